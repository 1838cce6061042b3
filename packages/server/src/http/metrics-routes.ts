/**
 * `GET /metrics` (Prometheus text; a MONITOR token unless metrics_public) and `GET /api/v1/metrics`
 * (every metric as JSON; MONITOR always).
 */
import type { FastifyInstance } from 'fastify';
import type { MetricsSampler } from '../metrics/sampler.ts';
import type { PrometheusExporter } from '../metrics/prometheus.ts';
import { bearerPrincipal, type RestDeps } from './http-helpers.ts';

export const PROMETHEUS_PATH = '/metrics';
export const METRICS_JSON_PATH = '/api/v1/metrics';

export function registerMetricsRoutes(
  app: FastifyInstance,
  deps: RestDeps & { sampler: MetricsSampler; prometheus: PrometheusExporter },
): void {
  const principalOf = bearerPrincipal(deps);

  app.get(PROMETHEUS_PATH, async (request, reply) => {
    if (!deps.config.metrics_public) await deps.access.requireGlobal(await principalOf(request), 'MONITOR');
    const { values } = await deps.sampler.read();
    const text = await deps.prometheus.render(values);
    return reply.header('content-type', deps.prometheus.contentType).send(text);
  });

  app.get(METRICS_JSON_PATH, async (request) => {
    await deps.access.requireGlobal(await principalOf(request), 'MONITOR');
    const { values } = await deps.sampler.read();
    return { success: true, data: { timestamp: new Date().toISOString(), metrics: values } };
  });
}
