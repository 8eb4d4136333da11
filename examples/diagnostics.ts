// Diagnostics: see why a connection recovers, through the three outlets Lifeline offers.
//   1. a logger (`consoleLogger('info')` here; pino, winston or `console` fit the same option),
//   2. Node's diagnostics_channel (subscribe to `lifeline:*` channels from anywhere in the process),
//   3. a metrics hook, wired to OpenTelemetry: every counter and gauge becomes an OTel instrument.
// The example runs a WebSocket echo server, drops every connection twice, and exits 0 once the
// OpenTelemetry reader has seen both recoveries.
//
//   node --conditions=@lifeline/source --import tsx diagnostics.ts
import diagnosticsChannel from 'node:diagnostics_channel';
import type { AddressInfo } from 'node:net';
import { attach, consoleLogger, DIAGNOSTIC_CHANNELS, type Metrics } from '@lifeline/core';
import { wsTransport } from '@lifeline/node/ws';
import { type Attributes, metrics as otel } from '@opentelemetry/api';
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import { WebSocketServer } from 'ws';

// OpenTelemetry: a meter provider with an in-memory exporter (use an OTLP exporter in production).
const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 60_000 });
otel.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }));
const meter = otel.getMeter('lifeline-example');

/** Lifeline's metrics hook on OpenTelemetry: one instrument per name, created on first use. */
function openTelemetryMetrics(): Metrics {
  const counters = new Map<string, ReturnType<typeof meter.createCounter>>();
  const gauges = new Map<string, ReturnType<typeof meter.createGauge>>();
  return {
    counter(name, value, attributes) {
      let counter = counters.get(name);
      if (!counter) {
        counter = meter.createCounter(name);
        counters.set(name, counter);
      }
      counter.add(value, attributes as Attributes);
    },
    gauge(name, value, attributes) {
      let gauge = gauges.get(name);
      if (!gauge) {
        gauge = meter.createGauge(name);
        gauges.set(name, gauge);
      }
      gauge.record(value, attributes as Attributes);
    },
  };
}

// diagnostics_channel: every retry decision, from anywhere in the process.
diagnosticsChannel.subscribe(DIAGNOSTIC_CHANNELS.retry, (message) => {
  console.log(`[diagnostics_channel] ${JSON.stringify(message)}`);
});

const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
await new Promise((resolve) => server.once('listening', resolve));
server.on('connection', (socket) => socket.on('message', (data, binary) => socket.send(data, { binary })));
const { port } = server.address() as AddressInfo;

const conn = attach(wsTransport(`ws://127.0.0.1:${port}`), {
  name: 'echo',
  logger: consoleLogger('info'),
  metrics: openTelemetryMetrics(),
});

for (let round = 1; round <= 2; round++) {
  await conn.send(`message ${round}`);
  const recovered = new Promise<void>((resolve) => {
    const subscription = conn.events$.subscribe((event) => {
      if (event.type !== 'recovered') return;
      subscription.unsubscribe();
      resolve();
    });
  });
  for (const client of server.clients) client.terminate(); // what a crashed server looks like to the client
  await recovered;
}

await reader.forceFlush();
const points = new Map<string, number>();
for (const resource of exporter.getMetrics()) {
  for (const scope of resource.scopeMetrics) {
    for (const metric of scope.metrics) {
      const total = metric.dataPoints.reduce((sum, point) => sum + Number(point.value), 0);
      points.set(metric.descriptor.name, total);
    }
  }
}
for (const [name, value] of points) console.log(`[opentelemetry] ${name} = ${value}`);

await conn.close();
server.close();
await reader.shutdown();
const recoveries = points.get('lifeline.connection.recoveries');
console.log(recoveries === 2 ? 'diagnostics: 2 recoveries seen by OpenTelemetry' : 'diagnostics: FAILED');
process.exitCode = recoveries === 2 ? 0 : 1;
