/**
 * An engine with some of its methods replaced: how the audit log, the metrics and the catalog scope each
 * put themselves between the endpoints and the engine. Everything not overridden is the engine's own.
 */
import type { Engine } from './engine.ts';

export function overrideEngine(engine: Engine, overrides: Partial<Engine>): Engine {
  /**
   * The engine's own methods, bound to it, by name: bound once, not at every call (a request looks up
   * several). Kept with the function bound, so that a method replaced on the engine is bound afresh.
   */
  type Method = (...args: unknown[]) => unknown;
  const bound = new Map<string | symbol, { method: Method; bound: Method }>();
  return new Proxy(engine, {
    get(target, property) {
      if (typeof property === 'string' && Object.hasOwn(overrides, property)) {
        return overrides[property as keyof Engine];
      }
      const value: unknown = Reflect.get(target, property, target);
      if (typeof value !== 'function') return value;
      const known = bound.get(property);
      if (known?.method === value) return known.bound;
      const fresh = (value as Method).bind(target);
      bound.set(property, { method: value as Method, bound: fresh });
      return fresh;
    },
  });
}
