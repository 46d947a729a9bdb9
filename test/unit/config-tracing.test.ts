import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../core/config.js';
import { configProblems } from '../support/config.js';

describe('tracing configuration', () => {
  it('is off with no OTLP endpoint, under the default service name', () => {
    expect(loadConfig({}).otel).toEqual({ endpoint: undefined, serviceName: 'stellaops-workflows' });
  });

  it('reads the OTLP endpoint and the service name', () => {
    const config = loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: ' http://collector:4318 ', OTEL_SERVICE_NAME: 'api' });
    expect(config.otel).toEqual({ endpoint: 'http://collector:4318', serviceName: 'api' });
  });

  it('refuses an endpoint that is not an http(s) URL, naming the variable', () => {
    expect(configProblems({ OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' })).toEqual([
      'OTEL_EXPORTER_OTLP_ENDPOINT must be an http(s) URL (got "collector:4318")',
    ]);
  });
});
