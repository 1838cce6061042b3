/**
 * An engine with some of its methods replaced: how the audit log, the metrics and the catalog scope each
 * put themselves between the endpoints and the engine. Everything not overridden is the engine's own.
 */
import type { Engine } from './engine.ts';

export function overrideEngine(engine: Engine, overrides: Partial<Engine>): Engine {
  return new Proxy(engine, {
    get(target, property) {
      if (typeof property === 'string' && Object.hasOwn(overrides, property)) {
        return overrides[property as keyof Engine];
      }
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}
