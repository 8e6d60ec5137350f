// Run inside a namespace without a default route: sends to an address with no route and prints
// the error dgram-native reports for send() and for sendBatch().
import { createSocket, DgramNativeError } from 'dgram-native';

const socket = createSocket({ bindAddress: '127.0.0.1' });
const report: Record<string, unknown> = {};
try {
  socket.send(Buffer.from('x'), 9, '192.0.2.1');
  report.send = 'sent';
} catch (error) {
  report.send = error instanceof DgramNativeError ? { code: error.code, syscall: error.syscall, message: error.message } : String(error);
}
const self = socket.address();
const batch = socket.sendBatch([
  { data: Buffer.from('a'), port: 9, address: '192.0.2.1' },
  { data: Buffer.from('b'), port: self.port, address: self.address },
]);
report.batch = { sent: batch.sent, failed: batch.failed.map((f) => ({ index: f.index, code: f.error.code })) };
socket.once('message', (datagram) => {
  report.selfReceived = datagram.data.toString();
  console.log(JSON.stringify(report));
  void socket.close();
});
