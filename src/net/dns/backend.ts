// What the DNS handler asks of the cluster: which of keel's zones a name falls in and what records
// a name has. directory.ts answers from an in-memory index of the object model; tests may answer
// from a literal table. Names are lower case, without the trailing dot.
import type { SrvData } from 'dns-packet';

/** A zone keel is authoritative for: a cluster domain, or the in-addr.arpa zone of a network. */
export interface Zone {
  /** The apex, e.g. `cluster.local` or `1.10.in-addr.arpa`. */
  name: string;
  /** SOA serial: changes whenever the index is rebuilt from a newer state of the store. */
  serial: number;
  /** The name server (keel itself) named by the apex's NS and SOA records. */
  nameserver: string;
}

/** The records at one name. Every name that exists has one, even with all lists empty (an apex, an empty non-terminal). */
export interface NameRecords {
  a: readonly string[];
  aaaa: readonly string[];
  ptr: readonly string[];
  srv: readonly SrvData[];
  /** The name is keel's own (the zones' name server): its A record is the address the query arrived at. */
  self?: boolean;
}

export interface DnsBackend {
  /** Changes whenever any answer may have changed (answer caches are keyed on it). */
  generation(): number;
  /** The zone `name` lies in (longest match); undefined: not keel's to answer. */
  zoneOf(name: string): Zone | undefined;
  /** The records at `name`; undefined: no such name (NXDOMAIN). */
  recordsAt(name: string): NameRecords | undefined;
  /** TTL of every record, and of negative answers (the SOA minimum). */
  readonly ttl: number;
  /** Stop following the cluster's changes. */
  close(): void;
}
