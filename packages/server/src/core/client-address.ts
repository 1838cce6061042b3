/**
 * The key per-address limits count by. An IPv6 client usually holds a whole /64 (and can pick any address
 * in it at will), so IPv6 addresses count by their /64; an IPv4 address mapped into IPv6
 * (`::ffff:203.0.113.7`) counts as the IPv4 address it is.
 */
import { isIPv6 } from 'node:net';

const MAPPED_IPV4 = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i;

export function addressKey(address: string): string {
  // IPv4, what almost every connection comes from: the IPv6 checks below cost more than the rest of
  // admitting a socket. Without a colon an address is no IPv6 one, and is counted as it is.
  if (!address.includes(':')) return address;
  const mapped = MAPPED_IPV4.exec(address);
  if (mapped) return mapped[1]!;
  const bare = address.split('%')[0]!;
  if (!isIPv6(bare)) return address;
  const [left = '', right] = bare.split('::');
  const groups = (part: string): string[] => (part === '' ? [] : part.split(':'));
  const head = groups(left);
  // An embedded IPv4 tail fills two groups; only the first four groups matter here, so its value does not.
  const tail = groups(right ?? '').flatMap((g) => (g.includes('.') ? ['0', '0'] : [g]));
  const all =
    right === undefined
      ? head
      : [...head, ...Array<string>(8 - head.length - tail.length).fill('0'), ...tail];
  return `${all
    .slice(0, 4)
    .map((g) => parseInt(g, 16).toString(16))
    .join(':')}::/64`;
}
