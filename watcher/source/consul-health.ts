// Consul's view of the service → instances: the watch handler's stdin (the agent's Go re-encoding)
// and the HTTP API's answer, which the source fetches itself, are both `[ {Node, Service, Checks} ]`
// and go through the same schema.
import { isIPv4, isIPv6 } from 'node:net';
import { z } from 'zod';
import { errorOfKind } from '../../common/cli/errors.ts';
import type { ConsulClient } from '../../common/consul/client.ts';
import { consulClient, type ConsulClientSettings } from '../consul-client.ts';
import type { Health, Instance } from '../model.ts';
import type { HealthSource, Snapshot } from './source.ts';

// Only the fields the watcher reads are checked; the rest is an open set that changes with
// Consul versions, so unknown keys pass through.
const taggedAddress = z.union([z.string(), z.object({ Address: z.string().optional(), address: z.string().optional() }).loose()]);
const serviceEntry = z
  .object({
    Node: z.object({ Node: z.string().min(1), Address: z.string(), TaggedAddresses: z.record(z.string(), z.string()).nullish() }).loose(),
    Service: z
      .object({
        ID: z.string().min(1),
        Service: z.string().min(1),
        Address: z.string(),
        TaggedAddresses: z.record(z.string(), taggedAddress).nullish(),
      })
      .loose(),
    Checks: z
      .array(
        z
          .object({
            CheckID: z.string(),
            Status: z.string(),
            ServiceID: z.string().optional(),
            Type: z.string().optional(),
            // Shown only, never decided on: an odd value is dropped rather than refusing the answer.
            Name: z.string().optional().catch(undefined),
            Output: z.string().optional().catch(undefined),
          })
          .loose(),
      )
      .nullable(),
  })
  .loose();

export const healthServiceSchema = z.array(serviceEntry);
export type ServiceEntry = z.infer<typeof serviceEntry>;

export class SourceInputError extends errorOfKind('SourceInputError', 'bad-input') {}

/** Parses what the watch sent on stdin; anything that is not that shape is refused whole, never half-used. */
export function parseHealthService(text: string): ServiceEntry[] {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new SourceInputError(`input is not JSON (${text.length} bytes${text.length === 0 ? ', empty' : ''})`);
  }
  return healthServiceEntries(json);
}

/** Checks a health/service answer already parsed from JSON, as parseHealthService does. */
export function healthServiceEntries(json: unknown): ServiceEntry[] {
  // A watch on a service with no instances hands over `null` (Go's nil slice), the API `[]`.
  if (json === null) return [];
  const result = healthServiceSchema.safeParse(json);
  if (!result.success) {
    const issue = result.error.issues[0];
    throw new SourceInputError(`input is not a health/service answer: ${issue?.path.join('.') ?? ''} ${issue?.message ?? ''}`.trim());
  }
  return result.data;
}

export function toInstances(entries: readonly ServiceEntry[], service: string): Instance[] {
  return entries
    .filter((entry) => entry.Service.Service === service)
    .map((entry) => ({
      node: entry.Node.Node,
      serviceId: entry.Service.ID,
      ipv4: addressOf(entry, 'ipv4'),
      ipv6: addressOf(entry, 'ipv6'),
      health: aggregate(entry.Checks ?? []),
      failingChecks: (entry.Checks ?? [])
        .filter((check) => check.Status !== 'passing')
        .map((check) => ({
          name: check.Name ?? check.CheckID,
          status: check.Status,
          // Long HTTP bodies: the first line's start says why; `consul` shows the rest.
          output: (check.Output ?? '').slice(0, MAX_CHECK_OUTPUT),
        })),
    }))
    .sort((a, b) => a.node.localeCompare(b.node) || a.serviceId.localeCompare(b.serviceId));
}

const MAX_CHECK_OUTPUT = 300;

/** The service's health through Consul's HTTP API (`/v1/health/service/<service>`), any health. */
export class ConsulHealthSource implements HealthSource {
  readonly #consul: ConsulClient;
  readonly #service: string;

  constructor(settings: ConsulClientSettings, service: string) {
    this.#consul = consulClient(settings);
    this.#service = service;
  }

  async read(): Promise<Snapshot> {
    const { value, index } = await this.#consul.healthService(this.#service);
    return {
      instances: toInstances(healthServiceEntries(value), this.#service),
      index,
      source: 'consul',
    };
  }
}

/** Consul's AggregatedStatus: maintenance > critical > warning > passing; no checks at all is passing. */
function aggregate(checks: readonly { CheckID: string; Status: string; Type?: string | undefined }[]): Health {
  if (
    checks.some(
      (check) => check.Type === 'maintenance' || check.CheckID.startsWith('_service_maintenance:') || check.CheckID === '_node_maintenance',
    )
  ) {
    return 'maintenance';
  }
  if (checks.some((check) => check.Status !== 'passing' && check.Status !== 'warning')) return 'critical';
  if (checks.some((check) => check.Status === 'warning')) return 'warning';
  return 'passing';
}

function taggedValue(tagged: Record<string, z.infer<typeof taggedAddress>> | null | undefined, key: string): string | undefined {
  const value = tagged?.[key];
  if (value === undefined) return undefined;
  return typeof value === 'string' ? value : (value.Address ?? value.address);
}

/** The first address of the family among the service's, its tagged LAN one, the node's and the node's tagged LAN one. */
function addressOf(entry: ServiceEntry, family: 'ipv4' | 'ipv6'): string | undefined {
  const accept = family === 'ipv4' ? isIPv4 : isIPv6;
  const candidates = [
    entry.Service.Address,
    taggedValue(entry.Service.TaggedAddresses, `lan_${family}`),
    entry.Node.Address,
    entry.Node.TaggedAddresses?.[`lan_${family}`],
  ];
  return candidates.find((candidate): candidate is string => candidate !== undefined && candidate !== '' && accept(candidate));
}
