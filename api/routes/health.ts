// /health/live touches nothing; /health/deep is what the Consul agent checks.
import express, { type Router } from 'express';
import type { BuildInfo } from '../build-info.ts';
import { checkDeepHealth, type Probe } from '../health/deep-health.ts';
import type { Metrics } from '../metrics.ts';

export function healthRoutes(deps: { probes: readonly Probe[]; probeTimeoutMs: number; metrics?: Metrics; build: BuildInfo }): Router {
  const router = express.Router();
  // Built once: the answer stays a constant string, and blue/green step 5 reads what runs from it.
  const live = `ok version=${deps.build.version} commit=${deps.build.commit}`;

  router.get('/health/live', (_req, res) => {
    res.set('Cache-Control', 'no-store').type('text/plain').send(live);
  });

  router.get('/health/deep', async (_req, res) => {
    const report = await checkDeepHealth(deps.probes, deps.probeTimeoutMs);
    deps.metrics?.recordHealth(report, Date.now());
    res.status(report.httpStatus).set('Cache-Control', 'no-store').type('text/plain').send(report.body);
  });

  return router;
}
