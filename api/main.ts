// st-api's composition root: read the configuration once, build the node, serve, drain on SIGTERM.
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { ConfigError, parseConfig, readConfigFile, type Config } from './config.ts';
import { demoInstructions, embeddedDemo, type EmbeddedDemo } from './demo/embedded.ts';
import { readBuildInfo } from './build-info.ts';
import { createHttpServer } from './http-server.ts';
import { describeListenError, displayHost, EXIT_CONFIG, listenFromEnv } from './listen.ts';
import { createLogger } from './logger.ts';
import { createService } from './service.ts';

function loadConfiguration(env: NodeJS.ProcessEnv): { config: Config; demo?: EmbeddedDemo } {
  // ST_API_HOST / ST_API_PORT (or PORT) override listen.*: a container publishes the embedded demo on 0.0.0.0.
  const withPort = (config: Config): Config => ({ ...config, listen: listenFromEnv(config.listen, env) });
  if (env.ST_API_CONFIG !== undefined && env.ST_API_CONFIG !== '') return { config: withPort(readConfigFile(env.ST_API_CONFIG, env)) };
  const demo = embeddedDemo();
  return { config: withPort(parseConfig(demo.rawConfig, env)), demo };
}

async function main(): Promise<void> {
  let loaded: { config: Config; demo?: EmbeddedDemo };
  try {
    loaded = loadConfiguration(process.env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`st-api: ${error.message}\n`);
    process.exit(EXIT_CONFIG);
  }
  const { config, demo } = loaded;
  const logger = createLogger({ level: config.logLevel, program: 'st-api' });
  const service = createService(config, logger, { build: readBuildInfo(process.env) });
  const server = createHttpServer(service.app, config.http).listen(config.listen.port, config.listen.host);
  try {
    await once(server, 'listening');
  } catch (error) {
    const { message, exitCode } = describeListenError(error, config.listen.host, config.listen.port);
    process.stderr.write(`st-api: ${message}\n`);
    process.exit(exitCode);
  }
  const { port } = server.address() as AddressInfo;
  logger.info(
    { host: config.listen.host, port, catalog: config.mysql === undefined ? 'embedded-demo' : 'mysql', redis: config.redis !== undefined },
    'st-api listening',
  );
  if (demo !== undefined) process.stdout.write(demoInstructions(`http://${displayHost(config.listen.host)}:${port}`, demo));

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
