// `npm run demo:token -- <viewer> [--hours N]`: a client token for a demo viewer, signed with the
// demo keys `npm start` uses (kept in ST_API_DEMO_DIR or .st-api-demo/), printed on stdout alone so
// that `TOKEN=$(npm run -s demo:token -- sd-buyer)` works.
import { parseArgs } from 'node:util';
import { USER_ID_PATTERN } from '../auth/client-token.ts';
import { DEMO_VIEWERS, demoKeyDir, embeddedDemo } from './embedded.ts';

const USAGE = `usage: npm run demo:token -- <viewer> [--hours N]

Prints a client token (JWT, RS256) for a viewer of the embedded demo, valid for N hours (default 12,
at most 720), signed with the demo keys in ${demoKeyDir(process.env)} (ST_API_DEMO_DIR overrides).
Demo viewers: ${DEMO_VIEWERS.join(', ')}; any other id is a viewer who bought nothing.
`;

/** sysexits.h EX_USAGE and EX_CANTCREAT. */
const EXIT_USAGE = 64;
const EXIT_CANTCREAT = 73;

function main(argv: readonly string[]): number {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      options: { hours: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    });
  } catch (error) {
    process.stderr.write(`demo:token: ${(error as Error).message}\n\n${USAGE}`);
    return EXIT_USAGE;
  }
  if (parsed.values.help === true) {
    process.stdout.write(USAGE);
    return 0;
  }
  const [viewer, ...extra] = parsed.positionals;
  const hours = parsed.values.hours === undefined ? 12 : Number(parsed.values.hours);
  const problem =
    viewer === undefined
      ? 'name a viewer'
      : extra.length > 0
        ? `one viewer at a time (got ${parsed.positionals.length})`
        : !USER_ID_PATTERN.test(viewer)
          ? 'a viewer id is 1-128 of A-Z a-z 0-9 . _ : @ | -'
          : !Number.isInteger(hours) || hours < 1 || hours > 720
            ? '--hours must be a whole number from 1 to 720'
            : undefined;
  if (problem !== undefined || viewer === undefined) {
    process.stderr.write(`demo:token: ${problem ?? 'name a viewer'}\n\n${USAGE}`);
    return EXIT_USAGE;
  }
  if (!(DEMO_VIEWERS as readonly string[]).includes(viewer))
    process.stderr.write(`demo:token: ${viewer} is not a demo viewer: st-api will answer 403 NOT_PURCHASED for every title\n`);
  const demo = embeddedDemo(demoKeyDir(process.env), (warning) => process.stderr.write(`demo:token: ${warning.message}\n`));
  if (demo.notKept !== undefined) {
    // A token signed with keys nobody keeps would verify nowhere.
    process.stderr.write(`demo:token: the demo keys cannot be kept: ${demo.notKept}; set ST_API_DEMO_DIR to a writable directory\n`);
    return EXIT_CANTCREAT;
  }
  process.stdout.write(`${demo.tokenFor(viewer, hours * 3600)}\n`);
  return 0;
}

process.exitCode = main(process.argv.slice(2));
