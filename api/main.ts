// st-api's composition root: read the configuration once, build the node, serve (HTTPS when listen.tls
// is set, its certificate reloaded on change and on SIGHUP; metrics and health also on a plain-HTTP
// admin listener when `admin` is set), drain on SIGTERM.
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import type { SecretFileWarning } from '../common/secret-file.ts';
import { ConfigError, parseConfig, readConfigFile, type Config } from './config.ts';
import { readBuildInfo } from './build-info.ts';
import { demoInstructions, demoKeyDir, embeddedDemo, type EmbeddedDemo } from './demo/embedded.ts';
import { startDemoPlay, type DemoPlayOutcome } from './demo/play-loader.ts';
import { createHttpServer } from './http-server.ts';
import { adminClash, adminFromEnv, describeListenError, displayHost, EXIT_CONFIG, listenFromEnv } from './listen.ts';
import { createLogger } from './logger.ts';
import { createService } from './service.ts';
import { CertificatePairError } from './tls/certificate-pair.ts';
import { ServingCertificate } from './tls/serving-certificate.ts';

async function loadConfiguration(
  env: NodeJS.ProcessEnv,
  onWarning: (warning: SecretFileWarning) => void,
): Promise<{ config: Config; demo?: EmbeddedDemo; play?: DemoPlayOutcome }> {
  // ST_API_HOST / ST_API_PORT (or PORT) override listen.*: a container publishes the embedded demo on 0.0.0.0.
  // ST_API_ADMIN_HOST / ST_API_ADMIN_PORT likewise override (or turn on) admin.*.
  const withPort = (config: Config): Config => {
    const listen = listenFromEnv(config.listen, env);
    const admin = adminFromEnv(config.admin, env);
    const clash = adminClash(listen, admin);
    if (clash !== undefined) throw new ConfigError([clash]);
    const effective: Config = { ...config, listen };
    if (admin === undefined) delete effective.admin;
    else effective.admin = admin;
    return effective;
  };
  if (env.ST_API_CONFIG !== undefined && env.ST_API_CONFIG !== '')
    return { config: withPort(readConfigFile(env.ST_API_CONFIG, env, onWarning)) };
  const demo = embeddedDemo(demoKeyDir(env), onWarning);
  // With its play page the demo plays through one real local edge instead of its example CDNs.
  const play = await startDemoPlay(demo);
  const raw = 'cdn' in play ? { ...demo.rawConfig, cdns: [play.cdn] } : demo.rawConfig;
  return { config: withPort(parseConfig(raw, env, onWarning)), demo, play };
}

async function main(): Promise<void> {
  let loaded: { config: Config; demo?: EmbeddedDemo; play?: DemoPlayOutcome };
  // The logger needs the configuration, so warnings about secret files wait for it.
  const secretFileWarnings: SecretFileWarning[] = [];
  try {
    loaded = await loadConfiguration(process.env, (warning) => secretFileWarnings.push(warning));
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`st-api: ${error.message}\n`);
    process.exit(EXIT_CONFIG);
  }
  const { config, demo, play } = loaded;
  const logger = createLogger({ level: config.logLevel, program: 'st-api' });
  for (const warning of secretFileWarnings) logger.warn({ file: warning.file, mode: warning.mode }, warning.message);

  const tls = config.listen.tls;
  let certificate: ServingCertificate | undefined;
  if (tls !== undefined) {
    try {
      certificate = ServingCertificate.open(tls, logger, { pollIntervalMs: tls.pollIntervalMs });
    } catch (error) {
      if (!(error instanceof CertificatePairError)) throw error;
      process.stderr.write(`st-api: invalid configuration:\n  - listen.tls: ${error.message}\n`);
      process.exit(EXIT_CONFIG);
    }
  }
  const build = readBuildInfo(process.env);
  const service = createService(config, logger, certificate === undefined ? { build } : { build, certificate });
  const app = play !== undefined && 'cdn' in play ? play.withPage(service.app) : service.app;
  const server = createHttpServer(
    app,
    config.http,
    certificate === undefined || tls === undefined ? undefined : { certificate, minVersion: tls.minVersion },
  ).listen(config.listen.port, config.listen.host);
  try {
    await once(server, 'listening');
  } catch (error) {
    const { message, exitCode } = describeListenError(error, config.listen.host, config.listen.port);
    process.stderr.write(`st-api: ${message}\n`);
    process.exit(exitCode);
  }
  // Plain HTTP, the public port's limits: meant for loopback or a private interface (Prometheus).
  let adminServer: ReturnType<typeof createHttpServer> | undefined;
  if (config.admin !== undefined && service.adminApp !== undefined) {
    const { host: adminHost, port: adminPort } = config.admin;
    adminServer = createHttpServer(service.adminApp, config.http);
    adminServer.listen(adminPort, adminHost);
    try {
      await once(adminServer, 'listening');
    } catch (error) {
      const { message, exitCode } = describeListenError(error, adminHost, adminPort);
      process.stderr.write(`st-api: admin listener: ${message}\n`);
      process.exit(exitCode);
    }
    logger.info(
      {
        host: adminHost,
        port: (adminServer.address() as AddressInfo).port,
        scheme: 'http',
        serves: ['/metrics', '/health/live', '/health/deep'],
      },
      'st-api admin listening',
    );
  }
  const servers = adminServer === undefined ? [server] : [server, adminServer];
  certificate?.watch(tls?.watch ?? true);
  const { port } = server.address() as AddressInfo;
  logger.info(
    {
      host: config.listen.host,
      port,
      scheme: certificate === undefined ? 'http' : 'https',
      ...(certificate === undefined
        ? {}
        : { serial: certificate.current().serial, notAfter: certificate.current().notAfter.toISOString() }),
      catalog: config.mysql === undefined ? 'embedded-demo' : 'mysql',
      redis: config.redis !== undefined,
    },
    'st-api listening',
  );
  if (demo !== undefined && play !== undefined)
    process.stdout.write(
      demoInstructions(`${certificate === undefined ? 'http' : 'https'}://${displayHost(config.listen.host)}:${port}`, demo, play),
    );

  // SIGHUP (systemctl reload) re-reads the certificate files; without TLS there is nothing to reload,
  // and the signal's default action would stop the process.
  process.on('SIGHUP', () => {
    if (certificate === undefined) logger.info('SIGHUP: nothing to reload (no listen.tls)');
    else certificate.reload('sighup');
  });

  let stopping = false;
  const shutdown = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal, drainMs: config.shutdown.drainMs }, 'draining: health now critical, finishing in-flight plays');
    service.startDraining();
    const forced = setTimeout(() => {
      logger.error('shutdown timed out; closing remaining connections');
      for (const each of servers) each.closeAllConnections();
      process.exit(1);
    }, config.shutdown.drainMs + config.shutdown.timeoutMs);
    forced.unref();
    // Keep answering while Consul notices the critical check and the watcher pulls this node from DNS.
    await new Promise((resolve) => setTimeout(resolve, config.shutdown.drainMs));
    await Promise.all(
      servers.map(async (each) => {
        each.close();
        each.closeIdleConnections();
        await once(each, 'close');
      }),
    );
    certificate?.close();
    await service.close();
    logger.info('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

await main();
