/**
 * Which web pages may use the server from a browser. A browser attaches the page's origin to every
 * WebSocket upgrade and to cross-origin HTTP requests (`Origin`); without a check, any site a user visits
 * could open a socket to a server the user can reach — one on the user's own machine with authentication
 * off, say — and act through it. Clients that are not browsers send no Origin and are not affected.
 *
 * Allowed: the server's own origin, loopback origins (an application's dev server on another port), and
 * the origins listed in `allowed_origins` (`*`: any). A server listening on a loopback address counts
 * only loopback origins as its own: a page under another name that reaches it has had that name pointed
 * at 127.0.0.1 (DNS rebinding).
 *
 * A rebinding page's own requests need no Origin (a same-origin GET carries none), and where no token is
 * needed that is enough to read data: a server on a loopback address with authentication off therefore
 * also refuses requests that name it (Host) by anything but a loopback name or an IP address.
 */
import { isIP } from 'node:net';
import { normalizeOrigin, parseAllowedOrigins } from '../config/config.ts';

/** localhost (and its subdomains, which browsers resolve to loopback), 127.0.0.0/8 and ::1. */
export function isLoopbackHost(hostname: string): boolean {
  const name = hostname.toLowerCase().replace(/\.$/, '');
  return (
    name === 'localhost' ||
    name.endsWith('.localhost') ||
    name === '[::1]' ||
    name === '::1' ||
    /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name)
  );
}

export class OriginPolicy {
  readonly #any: boolean;
  readonly #listed: ReadonlySet<string>;
  /** Listening on a loopback address: only loopback origins are its own. */
  readonly #loopbackBound: boolean;
  /** Loopback and without authentication: requests must name the server by a loopback name or address. */
  readonly #checkHost: boolean;

  constructor(options: { allowedOrigins: string | undefined; host: string; requireAuthentication: boolean }) {
    const parsed = parseAllowedOrigins(options.allowedOrigins ?? '');
    this.#any = parsed.any;
    this.#listed = parsed.origins;
    this.#loopbackBound = isLoopbackHost(options.host);
    this.#checkHost = this.#loopbackBound && !options.requireAuthentication;
  }

  /**
   * Whether a request carrying `origin` (its Origin header; undefined when there is none) and `host` (its
   * Host header) may proceed.
   */
  allows(origin: string | undefined, host: string | undefined): boolean {
    if (this.#checkHost && !namesLoopback(host)) return false;
    if (origin === undefined) return true;
    if (this.#any) return true;
    if (origin === 'null') return this.#listed.has('null');
    const normalized = normalizeOrigin(origin);
    if (normalized === undefined) return false;
    if (this.#listed.has(normalized)) return true;
    const url = new URL(normalized);
    if (isLoopbackHost(url.hostname)) return true;
    // Same origin: the page was served under the name and port the request was sent to.
    return !this.#loopbackBound && host !== undefined && url.host === hostAs(url.protocol, host);
  }
}

/** A Host header as URL.host gives it for `protocol`: lower-cased, the protocol's default port left out. */
function hostAs(protocol: string, host: string): string | undefined {
  try {
    return new URL(`${protocol}//${host}`).host;
  } catch {
    return undefined;
  }
}

/** A Host header naming a loopback name or any IP address (what a rebound name cannot be). */
function namesLoopback(host: string | undefined): boolean {
  if (host === undefined) return true;
  const hostname = hostAs('http:', host) === undefined ? undefined : new URL(`http://${host}`).hostname;
  if (hostname === undefined) return false;
  return isLoopbackHost(hostname) || isIP(hostname.replace(/^\[|\]$/g, '')) !== 0;
}
