// st-api's composition root: read the configuration once, build the node, serve, drain on SIGTERM.
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { ConfigError, parseConfig, readConfigFile, type Config } from './config.ts';
import { demoInstructions, demoKeyDir, embeddedDemo, type EmbeddedDemo } from './demo/embedded.ts';
import { startDemoPlay, type DemoPlayOutcome } from './demo/play-loader.ts';
import { createHttpServer } from './http-server.ts';
import { createLogger } from './logger.ts';
import { createService } from './service.ts';

/** sysexits.h EX_CONFIG: systemd and operators can tell a bad configuration from a crash. */
const EXIT_CONFIG = 78;

async function loadConfiguration(env: NodeJS.ProcessEnv): Promise<{ config: Config; demo?: EmbeddedDemo; play?: DemoPlayOutcome }> {
  // ST_API_HOST / ST_API_PORT override listen.*: a container publishes the embedded demo on 0.0.0.0.
  const withPort = (config: Config): Config => ({
    ...config,
    listen: {
      host: env.ST_API_HOST ?? config.listen.host,
      port: env.ST_API_PORT === undefined ? config.listen.port : Number(env.ST_API_PORT),
    },
  });
  if (env.ST_API_CONFIG !== undefined && env.ST_API_CONFIG !== '') return { config: withPort(readConfigFile(env.ST_API_CONFIG, env)) };
  const demo = embeddedDemo(demoKeyDir(env));
  // With its play page the demo plays through one real local edge instead of its example CDNs.
  const play = await startDemoPlay(demo);
  const raw = 'cdn' in play ? { ...demo.rawConfig, cdns: [play.cdn] } : demo.rawConfig;
  return { config: withPort(parseConfig(raw, env)), demo, play };
}

async function main(): Promise<void> {
  let loaded: { config: Config; demo?: EmbeddedDemo; play?: DemoPlayOutcome };
  try {
    loaded = await loadConfiguration(process.env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`st-api: ${error.message}\n`);
    process.exit(EXIT_CONFIG);
  }
  const { config, demo, play } = loaded;
  const logger = createLogger({ level: config.logLevel, program: 'st-api' });
  const service = createService(config, logger);
  const server = createHttpServer(play !== undefined && 'cdn' in play ? play.withPage(service.app) : service.app, config.http).listen(
    config.listen.port,
    config.listen.host,
  );
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  logger.info(
    { host: config.listen.host, port, catalog: config.mysql === undefined ? 'embedded-demo' : 'mysql', redis: config.redis !== undefined },
    'st-api listening',
  );
  if (demo !== undefined && play !== undefined) process.stdout.write(demoInstructions(`http://${config.listen.host}:${port}`, demo, play));

  let stopping = false;
  const shutdown = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal, drainMs: config.shutdown.drainMs }, 'draining: health now critical, finishing in-flight plays');
    service.startDraining();
    const forced = setTimeout(() => {
      logger.error('shutdown timed out; closing remaining connections');
      server.closeAllConnections();
      process.exit(1);
    }, config.shutdown.drainMs + config.shutdown.timeoutMs);
    forced.unref();
    // Keep answering while Consul notices the critical check and the watcher pulls this node from DNS.
    await new Promise((resolve) => setTimeout(resolve, config.shutdown.drainMs));
    server.close();
    server.closeIdleConnections();
    await once(server, 'close');
    await service.close();
    logger.info('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

await main();
