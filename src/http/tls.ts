// The certificate and key the HTTPS listener serves, and the CA clients verify it with
// (GET /api/v1/cluster/cabundle, the head's `ca_pem`). Either generated under <data-dir>/tls/ — a CA
// at first start, a server certificate signed by it whose names cover the head, re-issued at start
// when those names change or its expiry nears — or the operator's files (https.cert_file,
// https.key_file, https.ca_file), checked before the listener starts. docs/security.md, "HTTPS".
//
// Generation uses @peculiar/x509 on Node's WebCrypto: keys are made and signed natively. Its
// dependency tsyringe needs the Reflect metadata API before it loads: reflect-metadata provides it.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { mkdirSync, readFileSync } from 'node:fs';
import { createPrivateKey, randomBytes, webcrypto, X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { writeFileDurably } from '../durable-file.js';

/** The folder under the data directory that holds the generated CA and server certificate. */
export const TLS_DIR = 'tls';
export const CA_CERT_FILE = 'ca.pem';
const CA_KEY_FILE = 'ca.key';
const SERVER_CERT_FILE = 'server.pem';
const SERVER_KEY_FILE = 'server.key';

const DAY_MS = 86_400_000;
/** The CA lives long: every client that trusts it would have to be given the next one. */
export const CA_VALIDITY_DAYS = 3650;
/** Apple's clients refuse TLS server certificates valid longer than 825 days, whoever issued them. */
export const SERVER_VALIDITY_DAYS = 825;
/** A certificate with less than this left is replaced at start. */
export const RENEW_BEFORE_DAYS = 30;
/** notBefore this far in the past, so that a client whose clock is a little behind accepts a new certificate. */
const CLOCK_SKEW_MS = 3_600_000;

/**
 * RSA 2048 with SHA-256: what every TLS client verifies, iPXE's included (its TLS has RSA
 * signatures and RSA key exchange; ECDSA came to it only in later versions than Debian ships).
 */
const KEY_ALGORITHM = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256', publicExponent: new Uint8Array([1, 0, 1]), modulusLength: 2048 };

/** A name in a certificate: a DNS name or an IP address. */
export interface CertificateName {
  type: 'dns' | 'ip';
  value: string;
}

/** What the HTTPS listener serves and what clients are told to trust. */
export interface TlsCertificates {
  /** PEM private key of the server certificate (uWS reads it by path). */
  keyFile: string;
  /** PEM server certificate, followed by its chain when generated. */
  certFile: string;
  /** PEM of the CA certificates that verify the server certificate; '' for a configured certificate without https.ca_file. */
  caPem: string;
  /** The names the server certificate is valid for. */
  names: CertificateName[];
  notAfter: Date;
  /** What this start did: generated a CA (and a server certificate), re-issued the server certificate, or used what was there. */
  change: 'new-ca' | 'new-server-certificate' | 'none' | 'configured';
}

/** The operator's own certificate (config keys https.cert_file, https.key_file, https.ca_file). */
export interface ConfiguredCertificate {
  certFile: string | null;
  keyFile: string | null;
  caFile: string | null;
}

/** A configured certificate that cannot be used: the message names the key, the file and the problem. */
export class TlsConfigError extends Error {
  override name = 'TlsConfigError';
}

/**
 * The names a generated server certificate covers: the head's name and host name, `localhost`,
 * the head's name in the cluster domain, every address of the head's interfaces (link-local IPv6
 * addresses only mean something with an interface, which a certificate cannot say: left out), and
 * the configured extra names. Duplicates removed, DNS names lower-cased, sorted.
 */
export function serverNames(input: { headName: string; hostname: string; domain: string; addresses: readonly string[]; extra: readonly string[] }): CertificateName[] {
  const dns = new Set<string>();
  const ips = new Set<string>();
  const add = (value: string) => {
    if (isIP(value) !== 0) ips.add(normaliseAddress(value));
    else if (value !== '') dns.add(value.toLowerCase());
  };
  for (const name of [input.headName, input.hostname, 'localhost']) add(name);
  if (isIP(input.headName) === 0 && !input.headName.includes('.')) add(`${input.headName}.${input.domain}`);
  for (const address of input.addresses) if (!/^fe80:/i.test(address)) add(address);
  for (const name of input.extra) add(name);
  return [...[...dns].sort().map((value) => ({ type: 'dns' as const, value })), ...[...ips].sort().map((value) => ({ type: 'ip' as const, value }))];
}

/** One spelling of an address: IPv6 compressed and lower-case, IPv4-mapped IPv6 as IPv4. */
function normaliseAddress(address: string): string {
  if (isIP(address) === 4) return address;
  const host = new URL(`http://[${address}]/`).hostname.slice(1, -1);
  return host.startsWith('::ffff:') && isIP(host.slice(7)) === 4 ? host.slice(7) : host;
}

/**
 * The certificates of this start: the configured ones, checked (TlsConfigError on any problem), or
 * the generated ones under <dataDir>/tls, made or re-issued as needed.
 */
export async function ensureTlsCertificates(options: {
  dataDir: string;
  headName: string;
  names: readonly CertificateName[];
  configured: ConfiguredCertificate;
  now?: Date;
}): Promise<TlsCertificates> {
  const { configured } = options;
  if (configured.certFile !== null || configured.keyFile !== null || configured.caFile !== null) return checkConfigured(configured);
  return ensureGenerated(options.dataDir, options.headName, options.names, options.now ?? new Date());
}

function readConfigured(key: string, file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const problem = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied (keel reads it as the user it runs as)' : (err as Error).message;
    throw new TlsConfigError(`${key} ${file}: ${problem}`);
  }
}

/** The PEM certificates in `text`, in order. */
export function pemCertificates(text: string): string[] {
  return text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)?.map((block) => `${block}\n`) ?? [];
}

function checkConfigured(configured: ConfiguredCertificate): TlsCertificates {
  if (configured.certFile === null || configured.keyFile === null) {
    throw new TlsConfigError(`https.cert_file and https.key_file go together: set both (a PEM certificate and its private key), or neither to let keel generate them${configured.caFile !== null && configured.certFile === null && configured.keyFile === null ? ' (https.ca_file alone is not enough)' : ''}`);
  }
  const certText = readConfigured('https.cert_file', configured.certFile);
  const keyText = readConfigured('https.key_file', configured.keyFile);
  const [leafPem] = pemCertificates(certText);
  if (leafPem === undefined) throw new TlsConfigError(`https.cert_file ${configured.certFile}: no PEM certificate in it (-----BEGIN CERTIFICATE-----)`);
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(leafPem);
  } catch (err) {
    throw new TlsConfigError(`https.cert_file ${configured.certFile}: not a readable certificate: ${(err as Error).message}`);
  }
  let key: ReturnType<typeof createPrivateKey>;
  try {
    key = createPrivateKey(keyText);
  } catch (err) {
    throw new TlsConfigError(`https.key_file ${configured.keyFile}: not a readable PEM private key (an encrypted key needs its passphrase, which keel cannot ask for): ${(err as Error).message}`);
  }
  if (!leaf.checkPrivateKey(key)) throw new TlsConfigError(`https.key_file ${configured.keyFile} is not the private key of the certificate in https.cert_file ${configured.certFile}`);
  let caPem = '';
  if (configured.caFile !== null) {
    const caCerts = pemCertificates(readConfigured('https.ca_file', configured.caFile));
    if (caCerts.length === 0) throw new TlsConfigError(`https.ca_file ${configured.caFile}: no PEM certificate in it (-----BEGIN CERTIFICATE-----)`);
    caPem = caCerts.join('');
  }
  return { keyFile: configured.keyFile, certFile: configured.certFile, caPem, names: certificateNames(leafPem), notAfter: new Date(leaf.validTo), change: 'configured' };
}

/** The subject alternative names of a PEM certificate. */
export function certificateNames(pem: string): CertificateName[] {
  const extension = new x509.X509Certificate(pem).getExtension(x509.SubjectAlternativeNameExtension);
  return (extension?.names.items ?? [])
    .filter((name) => name.type === 'dns' || name.type === 'ip')
    .map((name) => ({ type: name.type as 'dns' | 'ip', value: name.type === 'ip' ? normaliseAddress(name.value) : name.value.toLowerCase() }));
}

const sameNames = (a: readonly CertificateName[], b: readonly CertificateName[]) => {
  const key = (names: readonly CertificateName[]) => names.map((n) => `${n.type}:${n.value}`).sort().join(',');
  return key(a) === key(b);
};

/** A certificate and its key read from disk, or undefined when either is missing, unreadable or they do not match. */
function readPair(certPath: string, keyPath: string): { pem: string; cert: X509Certificate; keyPem: string } | undefined {
  try {
    const pem = pemCertificates(readFileSync(certPath, 'utf8'))[0];
    const keyPem = readFileSync(keyPath, 'utf8');
    if (pem === undefined) return undefined;
    const cert = new X509Certificate(pem);
    return cert.checkPrivateKey(createPrivateKey(keyPem)) ? { pem, cert, keyPem } : undefined;
  } catch {
    return undefined;
  }
}

async function ensureGenerated(dataDir: string, headName: string, names: readonly CertificateName[], now: Date): Promise<TlsCertificates> {
  const dir = join(dataDir, TLS_DIR);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const paths = { caCert: join(dir, CA_CERT_FILE), caKey: join(dir, CA_KEY_FILE), cert: join(dir, SERVER_CERT_FILE), key: join(dir, SERVER_KEY_FILE) };
  const renewBy = now.getTime() + RENEW_BEFORE_DAYS * DAY_MS;
  let change: TlsCertificates['change'] = 'none';

  let ca = readPair(paths.caCert, paths.caKey);
  if (ca === undefined || !ca.cert.ca || Date.parse(ca.cert.validTo) < renewBy) {
    const made = await makeCa(headName, now);
    // The certificate last: its presence says the pair is whole (a crash in between leaves a key
    // without a certificate, and the next start makes a new pair).
    writeFileDurably(paths.caKey, made.keyPem, 0o600);
    writeFileDurably(paths.caCert, made.pem, 0o644);
    ca = { pem: made.pem, cert: new X509Certificate(made.pem), keyPem: made.keyPem };
    change = 'new-ca';
  }

  const server = readPair(paths.cert, paths.key);
  const current = server !== undefined && server.cert.verify(ca.cert.publicKey) && Date.parse(server.cert.validTo) >= renewBy && sameNames(certificateNames(server.pem), names);
  if (!current) {
    const made = await makeServerCertificate(headName, names, ca, now);
    writeFileDurably(paths.key, made.keyPem, 0o600);
    // The chain goes with the certificate: a client that has only the CA's fingerprint (iPXE built
    // with TRUST=) needs the CA certificate itself in the handshake.
    writeFileDurably(paths.cert, made.pem + ca.pem, 0o644);
    if (change === 'none') change = 'new-server-certificate';
  }
  const served = pemCertificates(readFileSync(paths.cert, 'utf8'))[0]!;
  return { keyFile: paths.key, certFile: paths.cert, caPem: ca.pem, names: certificateNames(served), notAfter: new Date(new X509Certificate(served).validTo), change };
}

/** A random positive serial number of 16 bytes (RFC 5280: at most 20, positive). */
function serialNumber(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0]! & 0x7f) | 0x01;
  return bytes.toString('hex');
}

async function newKeys(): Promise<CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(KEY_ALGORITHM, true, ['sign', 'verify'])) as CryptoKeyPair;
}

async function privateKeyPem(keys: CryptoKeyPair): Promise<string> {
  return x509.PemConverter.encode(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey), 'PRIVATE KEY') + '\n';
}

/** A distinguished-name value: the head's name, with the characters RFC 4514 escapes escaped. */
function dnValue(text: string): string {
  return text.replace(/[,+"\\<>;=]/g, (c) => `\\${c}`);
}

async function makeCa(headName: string, now: Date): Promise<{ pem: string; keyPem: string }> {
  const keys = await newKeys();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serialNumber(),
    name: `CN=keel CA ${dnValue(headName)}, O=keel`,
    notBefore: new Date(now.getTime() - CLOCK_SKEW_MS),
    notAfter: new Date(now.getTime() + CA_VALIDITY_DAYS * DAY_MS),
    keys,
    signingAlgorithm: KEY_ALGORITHM,
    extensions: [
      // pathlen 0: the CA signs server certificates only, never another CA.
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, webcrypto as Crypto),
    ],
  }, webcrypto as Crypto);
  return { pem: cert.toString('pem') + '\n', keyPem: await privateKeyPem(keys) };
}

async function makeServerCertificate(headName: string, names: readonly CertificateName[], ca: { pem: string; keyPem: string; cert: X509Certificate }, now: Date): Promise<{ pem: string; keyPem: string }> {
  const keys = await newKeys();
  const caKey = await webcrypto.subtle.importKey('pkcs8', x509.PemConverter.decodeFirst(ca.keyPem), KEY_ALGORITHM, false, ['sign']);
  const caCert = new x509.X509Certificate(ca.pem);
  const notAfter = Math.min(now.getTime() + SERVER_VALIDITY_DAYS * DAY_MS, Date.parse(ca.cert.validTo));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serialNumber(),
    subject: `CN=${dnValue(headName)}`,
    issuer: caCert.subject,
    notBefore: new Date(now.getTime() - CLOCK_SKEW_MS),
    notAfter: new Date(notAfter),
    publicKey: keys.publicKey,
    signingKey: caKey,
    signingAlgorithm: KEY_ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      // keyEncipherment: TLS clients that use RSA key exchange (iPXE among them) need it.
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(names.map((name) => ({ type: name.type, value: name.value }))),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, webcrypto as Crypto),
      await x509.AuthorityKeyIdentifierExtension.create(caCert, false, webcrypto as Crypto),
    ],
  }, webcrypto as Crypto);
  return { pem: cert.toString('pem') + '\n', keyPem: await privateKeyPem(keys) };
}

/** What GET /cluster/cabundle tells of each CA certificate in a PEM bundle. */
export function describeCertificates(pem: string): { subject: string; issuer: string; serial: string; not_before: string; not_after: string; sha256_fingerprint: string }[] {
  return pemCertificates(pem).map((block) => {
    const cert = new X509Certificate(block);
    return {
      subject: cert.subject.split('\n').join(', '),
      issuer: cert.issuer.split('\n').join(', '),
      serial: cert.serialNumber,
      not_before: new Date(cert.validFrom).toISOString(),
      not_after: new Date(cert.validTo).toISOString(),
      sha256_fingerprint: cert.fingerprint256,
    };
  });
}
