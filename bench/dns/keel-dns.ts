// keel's DNS server alone, for bench/dns/run.ts: the DnsDirectory and DnsServer that serve.ts
// starts, over an existing data directory, without the rest of the head (API, TFTP, DHCP).
// Prints one JSON line `{"ready":true,"port":N}` when it listens; on SIGTERM prints its stats and exits.
// Usage: node --import tsx bench/dns/keel-dns.ts DATA_DIR PORT
import { pino } from 'pino';
import { DnsDirectory } from '../../src/net/dns/directory.js';
import { DnsServer } from '../../src/net/dns/server.js';
import { Store } from '../../src/store/store.js';

const [dataDir, port] = process.argv.slice(2);
if (dataDir === undefined || port === undefined) throw new Error('usage: keel-dns.ts DATA_DIR PORT');
const store = new Store({ dataDir, headName: 'bench-dns' });
const server = new DnsServer({
  bindAddress: '127.0.0.1', port: Number(port), upstreams: [], log: pino({ level: 'warn' }),
  backend: new DnsDirectory(store, { domain: 'cluster.local', serverName: 'head', ttl: 60 }),
});
console.log(JSON.stringify({ ready: true, port: server.address().port }));
process.on('SIGTERM', () => {
  console.log(JSON.stringify({ stats: server.stats() }));
  void server.close().then(() => store.close()).then(() => process.exit(0));
});
