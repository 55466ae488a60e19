/**
 * Runs one portal from the environment (see README.md):
 *   PORTAL_NAME="Cổng Dịch vụ công quốc gia" PORT=3001 ISSUER=http://localhost:3000 \
 *   CLIENT_ID=demo-public-service CLIENT_SECRET=... MIN_LEVEL=1 node examples/portal/main.ts
 */
import { createPortal } from './app.ts';
import { PortalConfigError, readPortalConfig } from './config.ts';

let config: ReturnType<typeof readPortalConfig>;
try {
  config = readPortalConfig();
} catch (err) {
  if (!(err instanceof PortalConfigError)) throw err;
  process.stderr.write(`portal: ${err.message}\n`);
  process.exit(1);
}

const portal = createPortal(config, (event, details) =>
  process.stderr.write(
    `${JSON.stringify({ time: new Date().toISOString(), portal: config.clientId, event, ...details })}\n`,
  ),
);
await portal.listen();
process.stdout.write(
  `${config.name} is listening on ${config.baseUrl} (client ${config.clientId}, level ${config.minLevel})\n`,
);

const stop = async () => {
  await portal.close();
  process.exit(0);
};
process.once('SIGINT', stop).once('SIGTERM', stop);
