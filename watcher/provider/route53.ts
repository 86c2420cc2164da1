// Route53 through the real SDK: list the records the watcher owns, apply change batches.
// The SDK's standard retryer already backs off on Throttling, PriorRequestNotComplete and 5xx;
// a rejected batch (InvalidChangeBatch) means someone else changed the records, so it surfaces as
// a conflict and the controller re-plans against the fresh state. Every SDK failure the watcher
// knows leaves here as the run's (route53Failure): the CLI reads its kind, never an AWS error name;
// one it does not know (say, an expired session token) stays untranslated and exits 70, to be seen.
import {
  ChangeResourceRecordSetsCommand,
  GetChangeCommand,
  ListResourceRecordSetsCommand,
  type ListResourceRecordSetsCommandOutput,
  Route53Client,
  type ResourceRecordSet,
  type RRType,
} from '@aws-sdk/client-route-53';
import { errorOfKind, isConnectionFailure, translated, type ErrorKind } from '../../common/cli/errors.ts';
import { fqdn, type DnsRecord, type RecordType } from '../model.ts';
import { toBatches, type Change } from './batches.ts';
import type { ApplyResult, DnsProvider } from './provider.ts';

export interface Route53Settings {
  zoneId: string;
  recordName: string;
  ownerId: string;
  /** Attempts per API call, retries included (SDK standard retryer with jittered backoff). */
  maxAttempts: number;
}

/** Someone else changed the records: the caller re-plans against fresh state. */
export class ChangeRejectedError extends errorOfKind('ChangeRejectedError', 'transient') {}

export class Route53Provider implements DnsProvider {
  readonly #client: Route53Client;
  readonly #settings: Route53Settings;
  /** API calls made, for the run's status and the benchmark. */
  calls = 0;

  constructor(settings: Route53Settings, client?: Route53Client) {
    this.#settings = settings;
    // Route53 is a global service signed in us-east-1; AWS_ENDPOINT_URL_ROUTE_53 points it elsewhere.
    this.#client = client ?? new Route53Client({ region: 'us-east-1', maxAttempts: settings.maxAttempts });
    // The endpoint each request goes to, whatever chose it (default, AWS_ENDPOINT_URL_ROUTE_53, a test's
    // endpoint): errors name it, so "ECONNREFUSED" says whose address refused.
    this.#client.middlewareStack.add(
      (next) => async (args) => {
        const request = args.request as { protocol?: unknown; hostname?: unknown; port?: unknown };
        if (typeof request.protocol === 'string' && typeof request.hostname === 'string')
          this.#endpoint = `${request.protocol}//${request.hostname}${typeof request.port === 'number' ? `:${request.port}` : ''}`;
        return next(args);
      },
      { step: 'build', name: 'stApiRoute53Endpoint' },
    );
  }

  #endpoint: string | undefined;

  /** Every SDK failure leaves as route53Failure, its message prefixed with the endpoint and the operation. */
  #failure(operation: string): (error: unknown) => never {
    return (error) => route53Failure(error, `Route53${this.#endpoint === undefined ? '' : ` at ${this.#endpoint}`}: ${operation}`);
  }

  /** The owned multivalue records under the record name, following NextRecordIdentifier across pages. */
  async listOwned(): Promise<DnsRecord[]> {
    const name = fqdn(this.#settings.recordName);
    const owned: DnsRecord[] = [];
    let start: { name: string; type: RRType; identifier?: string } | undefined = { name, type: 'A' };
    for (let page = 0; start !== undefined && page < 10_000; page += 1) {
      this.calls += 1;
      const response: ListResourceRecordSetsCommandOutput = await this.#client
        .send(
          new ListResourceRecordSetsCommand({
            HostedZoneId: this.#settings.zoneId,
            StartRecordName: start.name,
            StartRecordType: start.type,
            ...(start.identifier === undefined ? {} : { StartRecordIdentifier: start.identifier }),
            MaxItems: 300,
          }),
        )
        .catch(this.#failure(`ListResourceRecordSets (zone ${this.#settings.zoneId})`));
      let pastOurName = false;
      for (const set of response.ResourceRecordSets ?? []) {
        if (fqdn(set.Name ?? '') !== name) {
          pastOurName = true;
          break;
        }
        const record = this.#ownedRecord(set);
        if (record !== undefined) owned.push(record);
      }
      start =
        response.IsTruncated === true && !pastOurName && response.NextRecordName !== undefined && response.NextRecordType !== undefined
          ? {
              name: response.NextRecordName,
              type: response.NextRecordType,
              ...(response.NextRecordIdentifier === undefined ? {} : { identifier: response.NextRecordIdentifier }),
            }
          : undefined;
    }
    return owned;
  }

  /** `beforeEachBatch` may throw to stop before the next batch (the lock is no longer held). */
  async apply(changes: readonly Change[], beforeEachBatch: () => void = () => undefined): Promise<ApplyResult> {
    const changeIds: string[] = [];
    for (const batch of toBatches(changes)) {
      beforeEachBatch();
      this.calls += 1;
      const response = await this.#client
        .send(
          new ChangeResourceRecordSetsCommand({
            HostedZoneId: this.#settings.zoneId,
            ChangeBatch: {
              Comment: `st-api watcher (${this.#settings.ownerId})`,
              Changes: batch.map((change) => ({ Action: change.action, ResourceRecordSet: toResourceRecordSet(change.record) })),
            },
          }),
        )
        .catch(this.#failure(`ChangeResourceRecordSets (zone ${this.#settings.zoneId}, ${batch.length} change(s))`));
      if (response.ChangeInfo?.Id !== undefined) changeIds.push(response.ChangeInfo.Id);
    }
    return { changeIds };
  }

  /** Polls GetChange until INSYNC or the deadline; returns whether it got there. */
  async waitInSync(changeId: string, deadlineMs: number): Promise<boolean> {
    const until = Date.now() + deadlineMs;
    for (let attempt = 0; Date.now() < until && attempt < 120; attempt += 1) {
      this.calls += 1;
      const response = await this.#client.send(new GetChangeCommand({ Id: changeId })).catch(this.#failure(`GetChange ${changeId}`));
      if (response.ChangeInfo?.Status === 'INSYNC') return true;
      await new Promise((resolve) => setTimeout(resolve, Math.min(1000, 100 * 2 ** attempt)));
    }
    return false;
  }

  #ownedRecord(set: ResourceRecordSet): DnsRecord | undefined {
    const type = set.Type;
    if ((type !== 'A' && type !== 'AAAA') || set.MultiValueAnswer !== true) return undefined;
    if (set.SetIdentifier === undefined || !set.SetIdentifier.startsWith(`${this.#settings.ownerId}/`)) return undefined;
    return {
      name: fqdn(set.Name ?? ''),
      type: type satisfies RecordType,
      setIdentifier: set.SetIdentifier,
      ttl: set.TTL ?? 0,
      values: (set.ResourceRecords ?? []).map((record) => record.Value ?? ''),
    };
  }
}

function toResourceRecordSet(record: DnsRecord): ResourceRecordSet {
  return {
    Name: record.name,
    Type: record.type,
    SetIdentifier: record.setIdentifier,
    MultiValueAnswer: true,
    TTL: record.ttl,
    ResourceRecords: record.values.map((value) => ({ Value: value })),
  };
}

/** Still failing after the SDK's retries: the next run repairs. */
const TRANSIENT = new Set([
  'Throttling',
  'ThrottlingException',
  'PriorRequestNotComplete',
  'ServiceUnavailable',
  'InternalFailure',
  'TimeoutError',
]);
/** The zone id, the IAM permissions or the credentials are wrong: a human fixes the configuration. */
const CONFIG = new Set([
  'NoSuchHostedZone',
  'AccessDenied',
  'AccessDeniedException',
  'InvalidInput',
  'CredentialsProviderError',
  'InvalidClientTokenId',
]);

/** The kind of an SDK failure; undefined for one the watcher does not expect (a bug, exit 70). */
function route53ErrorKind(error: unknown): ErrorKind | undefined {
  const { name, $metadata } = (error ?? {}) as { name?: unknown; $metadata?: { httpStatusCode?: unknown } };
  if (typeof name === 'string' && TRANSIENT.has(name)) return 'transient';
  if (typeof $metadata?.httpStatusCode === 'number' && $metadata.httpStatusCode >= 500) return 'transient';
  if (typeof name === 'string' && CONFIG.has(name)) return 'config';
  if (isConnectionFailure(error)) return 'unavailable';
  return undefined;
}

/**
 * The run's error for an SDK failure, `what` (endpoint and operation) before the SDK's message; its
 * name stays the SDK's (Throttling, AccessDenied: what runbooks search for), a bare Error's becomes
 * Route53Error. One the watcher does not know is rethrown as it is: a bug, exit 70.
 */
function route53Failure(error: unknown, what: string): never {
  const message = `${what}: ${error instanceof Error ? error.message : String(error)}`;
  if ((error as { name?: unknown } | null)?.name === 'InvalidChangeBatch') throw new ChangeRejectedError(message, { cause: error });
  const kind = route53ErrorKind(error);
  if (kind === undefined) throw error;
  const failure = translated(kind, error);
  failure.message = message;
  if (failure.name === 'Error') failure.name = 'Route53Error';
  throw failure;
}
