// Summarises a V8 .cpuprofile (node --cpu-prof): self time by function and by area (our code,
// each npm package, Node internals, GC), so "profile before optimising" is one readable table.
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface Frame {
  label: string;
  area: string;
  selfMs: number;
  percent: number;
}

export interface ProfileSummary {
  totalMs: number;
  frames: Frame[];
  areas: { area: string; selfMs: number; percent: number }[];
}

export function summariseProfile(file: string, repoRoot: string): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfMicros = new Map<number, number>();
  profile.samples.forEach((id, index) => selfMicros.set(id, (selfMicros.get(id) ?? 0) + (profile.timeDeltas[index] ?? 0)));

  const frames = new Map<string, { area: string; micros: number }>();
  const areas = new Map<string, number>();
  let total = 0;
  for (const [id, micros] of selfMicros) {
    const frame = byId.get(id)?.callFrame;
    if (frame === undefined) continue;
    total += micros;
    const where = location(frame.url, repoRoot);
    const name = frame.functionName === '' ? '(anonymous)' : frame.functionName;
    // Line numbers of tsx-transpiled files are those of the generated code: show them for real JS only.
    const line = frame.lineNumber > 0 && !where.endsWith('.ts') ? `:${frame.lineNumber + 1}` : '';
    const label = where === '' ? name : `${name}  ${where}${line}`;
    const area = areaOf(frame.url, name, repoRoot);
    const entry = frames.get(label) ?? { area, micros: 0 };
    entry.micros += micros;
    frames.set(label, entry);
    areas.set(area, (areas.get(area) ?? 0) + micros);
  }
  const percent = (micros: number) => (total === 0 ? 0 : (micros / total) * 100);
  return {
    totalMs: total / 1000,
    frames: [...frames.entries()]
      .map(([label, { area, micros }]) => ({ label, area, selfMs: micros / 1000, percent: percent(micros) }))
      .sort((a, b) => b.selfMs - a.selfMs),
    areas: [...areas.entries()]
      .map(([area, micros]) => ({ area, selfMs: micros / 1000, percent: percent(micros) }))
      .sort((a, b) => b.selfMs - a.selfMs),
  };
}

function location(url: string, repoRoot: string): string {
  if (url === '') return '';
  const path = url.startsWith('file://') ? fileURLToPath(url) : url;
  return path.startsWith(repoRoot) ? relative(repoRoot, path) : path;
}

function areaOf(url: string, name: string, repoRoot: string): string {
  if (url === '') return name.startsWith('(') ? name : '(native)';
  const path = url.startsWith('file://') ? fileURLToPath(url) : url;
  const modules = [...path.matchAll(/node_modules\/((?:@[^/]+\/)?[^/]+)/g)].at(-1)?.[1];
  if (modules !== undefined) return modules;
  if (path.startsWith('node:')) return 'node internals';
  if (path.startsWith(repoRoot)) return relative(repoRoot, path).split('/').slice(0, 2).join('/');
  return path;
}

/**
 * Prints the summary of the one .cpuprofile in `dir` under `heading` (what was profiled and what the
 * sample covers); says so when node wrote none.
 */
export function printProfile(dir: string, repoRoot: string, heading: readonly string[]): void {
  const file = readdirSync(dir).find((name) => name.endsWith('.cpuprofile'));
  if (file === undefined) {
    process.stderr.write('bench: no .cpuprofile was written\n');
    return;
  }
  const summary = summariseProfile(join(dir, file), repoRoot);
  const out = [
    ...heading,
    `  ${(summary.totalMs / 1000).toFixed(1)} s sampled, idle included; api/ files are tsx-transpiled, so frames show no line`,
    'self time by area:',
    ...summary.areas
      .slice(0, 12)
      .map((area) => `  ${area.percent.toFixed(1).padStart(5)} %  ${area.selfMs.toFixed(0).padStart(7)} ms  ${area.area}`),
    'top self-time frames:',
    ...summary.frames
      .slice(0, 25)
      .map((frame) => `  ${frame.percent.toFixed(1).padStart(5)} %  ${frame.selfMs.toFixed(0).padStart(7)} ms  ${frame.label}`),
  ];
  process.stdout.write(`${out.join('\n')}\n\n`);
}
