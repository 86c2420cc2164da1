import express, { type Router } from 'express';
import type { Metrics } from '../metrics.ts';

export function metricsRoutes(metrics: Metrics): Router {
  const router = express.Router();
  router.get('/metrics', async (_req, res) => {
    res.set('Content-Type', metrics.registry.contentType).send(await metrics.registry.metrics());
  });
  return router;
}
