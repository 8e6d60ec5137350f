// Runs inside the server namespace of netns.test.ts: answers each request with a
// broadcast sent out of the interface the request arrived on (IP_PKTINFO ifindex), and prints
// one JSON line per request so the test can check what the socket reported.
// Usage: broadcast-responder.ts <port> <replyPort> [interface]
import { createSocket } from 'dgram-native';

const [port, replyPort, boundInterface] = [Number(process.argv[2]), Number(process.argv[3]), process.argv[4]];
const socket = createSocket({ port, broadcast: true, reuseAddr: true, interface: boundInterface || undefined });
socket.on('message', (request) => {
  const { address, port: sourcePort, destinationAddress, localAddress, ifindex, ifname } = request;
  console.log(JSON.stringify({ text: request.data.toString(), address, sourcePort, destinationAddress, localAddress, ifindex, ifname }));
  socket.send(Buffer.from(`reply:${ifname}:${request.data.toString()}`), replyPort, '255.255.255.255', { ifindex });
});
process.on('SIGTERM', () => void socket.close().then(() => process.exit(0)));
console.log(JSON.stringify({ ready: true }));
