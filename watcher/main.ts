#!/usr/bin/env node
// The watcher's executable: Consul's watch runs `watcher handle`; operators run the other commands.
import { run } from './cli.ts';

// The AWS SDK warns on every run under Node < 22 that its releases after January 2027 will need 22 (eight
// lines in every handler's output and every terminal); production runs Node 24. This is the SDK's own
// switch for that one warning (@aws-sdk/core emitWarningIfUnsupportedVersion); an explicit value wins.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

process.exitCode = await run(process.argv.slice(2), {
  stdin: process.stdin,
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
});
