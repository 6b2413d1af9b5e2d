// scripts/dev's server: migrate, seed once, serve every worker on one origin until Ctrl-C.
import path from "node:path";
import { ROOT, migrate, seedDemoCatalog, startBackend } from "./backend.mjs";

const persistDir = path.join(ROOT, ".wrangler", "state");
const port = Number(process.env.PORT ?? 8787);

await migrate(persistDir);
const { mf, url } = await startBackend({ persistDir, port, verbose: true });
if (await seedDemoCatalog(mf)) console.log("seeded the demo catalog");

console.log(`
Backend running at ${url}  (Ctrl-C stops it)

  curl -s '${url}/v1/products?limit=3'
  curl -s -X POST '${url}/v1/carts' -H 'Content-Type: application/json' \\
       -H "Idempotency-Key: $(od -An -N16 -tx1 /dev/urandom | tr -d ' \\n')" -d '{"currency":"EUR"}'

OpenAPI document: ${url}/v1/openapi.json
Admin token:      scripts/admin-token catalog:write
`);

let stopping = false;
async function stop() {
  if (stopping) return;
  stopping = true;
  await mf.dispose();
  process.exit(0);
}
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
