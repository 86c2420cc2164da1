// Which registrations can be published at all, decided per instance before planning. A Route53 batch
// is all-or-nothing, so one registration Route53 refuses would stop every change of the run, the
// deletion of dead nodes included; and some addresses must never reach clients even though Route53
// takes them. Both are left out, each with the reason `plan`, `status` and the run status show.
import { BlockList, isIPv4, isIPv6 } from 'node:net';
import type { Instance } from '../model.ts';
import { setIdentifierProblem } from './set-identifier.ts';

export interface Skipped {
  node: string;
  serviceId: string;
  /** What was left out and why, e.g. `A 127.0.0.1: loopback`. */
  reason: string;
}

export interface PublishPolicy {
  ownerId: string;
  /** Test rigs and single-host demos only: publish 127.0.0.0/8 and ::1. */
  publishLoopback?: boolean;
}

// Addresses no client elsewhere can use (RFC 6890 special-purpose registries). Route53 publishes them
// all; a node that reports one is misconfigured (a bind to localhost, a link-local interface).
// An IPv4 rule also matches the IPv4-mapped IPv6 form (::ffff:127.0.0.1).
const NEVER_PUBLISHED: readonly (readonly [reason: string, network: string, prefix: number, family: 'ipv4' | 'ipv6'])[] = [
  ['unspecified', '0.0.0.0', 8, 'ipv4'],
  ['unspecified', '::', 128, 'ipv6'],
  ['loopback', '127.0.0.0', 8, 'ipv4'],
  ['loopback', '::1', 128, 'ipv6'],
  ['link-local', '169.254.0.0', 16, 'ipv4'],
  ['link-local', 'fe80::', 10, 'ipv6'],
  ['multicast', '224.0.0.0', 4, 'ipv4'],
  ['multicast', 'ff00::', 8, 'ipv6'],
  ['broadcast', '255.255.255.255', 32, 'ipv4'],
];
const RANGES = NEVER_PUBLISHED.map(([reason, network, prefix, family]) => {
  const list = new BlockList();
  list.addSubnet(network, prefix, family);
  return { reason, list };
});

/**
 * Whether the address can lie in one of the ranges at all, from its first octet or hextet; the lists
 * decide. A BlockList check costs microseconds, and the bench plans fleets of thousands.
 */
function mayBeSpecial(address: string, family: 'ipv4' | 'ipv6'): boolean {
  if (family === 'ipv4') {
    const first = Number(address.slice(0, address.indexOf('.')));
    return first === 0 || first === 127 || first === 169 || first >= 224;
  }
  // A leading `::` is a first hextet of 0 (unspecified, loopback, IPv4-mapped).
  const first = Number.parseInt(address.slice(0, address.indexOf(':')) || '0', 16);
  return first === 0 || (first & 0xffc0) === 0xfe80 || (first & 0xff00) === 0xff00;
}

/** Why this address must not be published, or undefined when it may be. */
export function addressProblem(address: string, policy: PublishPolicy): string | undefined {
  const family = isIPv4(address) ? 'ipv4' : isIPv6(address) ? 'ipv6' : undefined;
  if (family === undefined) return 'not an IP address';
  // node accepts fe80::1%eth0; an AAAA value is the 16 bytes only and Route53 refuses the zone index.
  if (address.includes('%')) return 'scoped address (zone index): Route53 refuses it';
  if (!mayBeSpecial(address, family)) return undefined;
  const reason = RANGES.find(({ list }) => list.check(address, family))?.reason;
  return reason === 'loopback' && policy.publishLoopback === true ? undefined : reason;
}

/** The instances with only the addresses that may be published; those with none left are skipped whole. */
export function publishable(instances: readonly Instance[], policy: PublishPolicy): { instances: Instance[]; skipped: Skipped[] } {
  const kept: Instance[] = [];
  const skipped: Skipped[] = [];
  for (const instance of instances) {
    const skip = (reason: string) => skipped.push({ node: instance.node, serviceId: instance.serviceId, reason });
    const identifierProblem = setIdentifierProblem(policy.ownerId, instance);
    if (identifierProblem !== undefined) {
      skip(identifierProblem);
      continue;
    }
    const checked = (type: 'A' | 'AAAA', address: string | undefined): string | undefined => {
      if (address === undefined) return undefined;
      const problem = addressProblem(address, policy);
      if (problem === undefined) return address;
      skip(`${type} ${address}: ${problem}`);
      return undefined;
    };
    const ipv4 = checked('A', instance.ipv4);
    const ipv6 = checked('AAAA', instance.ipv6);
    if (ipv4 === undefined && ipv6 === undefined) {
      if (instance.ipv4 === undefined && instance.ipv6 === undefined) skip('no IPv4 or IPv6 address in Consul');
      continue;
    }
    kept.push({ ...instance, ipv4, ipv6 });
  }
  return { instances: kept, skipped };
}
