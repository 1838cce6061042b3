// Module hooks for idle-memory-preload.mjs: reports every module the server loads.
let port;
export function initialize(data) {
  port = data.port;
}
export async function load(url, context, next) {
  port.postMessage(url);
  return next(url, context);
}
