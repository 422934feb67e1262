// The agenda's k6 writer: rentals and their payments, through the application tier
// (`runner serve`) and pgbouncer.
//
//   k6 run k6/write.js                                  4 VUs for 10 s, as fast as they go
//   k6 run -e VUS=8 -e DURATION=30s k6/write.js         more, longer
//   k6 run -e RATE=100 k6/write.js                      100 requests/s (VUS at most in flight)
//   k6 run --out json=k6-writes.json k6/write.js        ... keeping every op for
//   runner verify --ledger k6-writes.json --on postgres-sync-standby
//
// Every request carries an op id made here: run_id * 2^32 + seq, the same shape as
// `runner load`'s ledger ids, so `runner verify` can ask a node for exactly this run's
// rows. Each op leaves two samples tagged with its id: `rental_attempts` before the
// request is sent, `rental_ops` (its time, outcome and error class) once answered. With
// `--out json`, those samples are the run's ledger — what k6 saw acknowledged.
import http from 'k6/http';
import { check, sleep } from 'k6';
import exec from 'k6/execution';
import { Counter, Trend } from 'k6/metrics';

// compose/.env's APP_PORT, unless the environment says otherwise.
const APP = __ENV.APP_URL || `http://127.0.0.1:${__ENV.APP_PORT || 18080}`;

// Per VU, iterations are numbered within 2^22; VU ids within 2^10: seq < 2^32.
const PER_VU = 2 ** 22;

const rentalAttempts = new Counter('rental_attempts');
const rentalOps = new Trend('rental_ops', true);

const VUS = Number(__ENV.VUS || 4);
const DURATION = __ENV.DURATION || '10s';

export const options = {
  // Closed model by default (each VU sends its next request when the last one is
  // answered); with RATE, an open one: RATE requests a second whatever the answers,
  // and when all VUS are waiting k6 drops the iteration (`dropped_iterations`).
  scenarios: {
    writes: __ENV.RATE
      ? {
          executor: 'constant-arrival-rate',
          rate: Number(__ENV.RATE),
          timeUnit: '1s',
          duration: DURATION,
          preAllocatedVUs: VUS,
          maxVUs: VUS,
        }
      : { executor: 'constant-vus', vus: VUS, duration: DURATION },
  },
  // The agenda's "successful write rate": fewer than 1 % of writes may fail.
  thresholds: {
    checks: ['rate>0.99'],
    http_req_failed: ['rate<0.01'],
  },
  summaryTrendStats: ['avg', 'med', 'p(95)', 'p(99)', 'max'],
};

export function setup() {
  // The app may have been started a moment ago: give it 10 s to listen.
  let up = false;
  for (let i = 0; i < 50 && !up; i++) {
    up = http.get(`${APP}/health`, { timeout: '1s', responseCallback: http.expectedStatuses(200, 0) }).status === 200;
    if (!up) sleep(0.2);
  }
  if (!up) {
    exec.test.abort(`the application tier does not answer at ${APP} (start it: runner serve &)`);
  }
  // Below 2^20, so that run_id * 2^32 + seq stays an exact JavaScript number (< 2^53).
  const runId = Number(__ENV.RUN_ID || 1 + Math.floor(Math.random() * (2 ** 20 - 1)));
  return { runId };
}

export default function (data) {
  const iteration = exec.vu.iterationInScenario;
  if (iteration >= PER_VU - 1 || exec.vu.idInTest >= 1024) {
    exec.test.abort('op ids of this run exhausted (2^22 iterations per VU, 1023 VUs)');
  }
  const op = data.runId * 2 ** 32 + exec.vu.idInTest * PER_VU + iteration + 1;
  rentalAttempts.add(1, { op: String(op) });
  const started = Date.now();
  const res = http.post(`${APP}/rentals`, JSON.stringify({ op_id: op }), {
    headers: { 'Content-Type': 'application/json' },
    timeout: '10s',
    tags: { name: 'POST /rentals' },
  });
  const committed = check(res, { 'rental committed (201)': (r) => r.status === 201 });
  let error = '';
  if (!committed) {
    // The app's class (connection_refused, read_only, timeout, ...), or k6's own.
    try {
      error = res.json('error') || '';
    } catch (_) {
      error = res.error_code ? `k6_${res.error_code}` : `http_${res.status}`;
    }
  }
  rentalOps.add(Date.now() - started, {
    op: String(op),
    outcome: committed ? 'ack' : 'fail',
    class: error,
  });
}
