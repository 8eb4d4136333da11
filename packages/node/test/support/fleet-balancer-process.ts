// One TcpBalancer of the fleet test in a process of its own. A process may hold at most
// `ulimit -n` descriptors (20,000 on the test machines, a hard limit) and a balanced connection
// takes two (the client's and the upstream), so 10,000 sessions need more than one balancer
// process. argv: the backend ports, comma-separated. IPC: {"type":"listening","url":U} once
// listening; {"type":"attempts"} is answered with the per-second counts and the unrouted count.
import { TcpBalancer } from './tcp-balancer.js';

const backends = process.argv[2]!.split(',').map(Number);
const balancer = await TcpBalancer.start(backends);
process.send!({ type: 'listening', url: balancer.url });
process.on('message', (message: { type: string }) => {
  if (message.type !== 'attempts') return;
  process.send!({
    type: 'attempts',
    attempts: [...balancer.attempts].map(([second, counts]) => [second, [...counts]]),
    unrouted: balancer.unrouted,
  });
});
// The parent gone (the test ended or crashed): nothing keeps this balancer alive.
process.on('disconnect', () => process.exit(0));
