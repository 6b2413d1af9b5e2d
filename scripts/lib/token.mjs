// Development admin tokens: HS256 JWTs signed with JWT_SECRET from .dev.vars (jose).
import { SignJWT } from "jose";
import { devVars } from "./backend.mjs";

export async function adminToken(scopes, { ttlSeconds = 3600, secret = devVars().JWT_SECRET, alg = "HS256", sub = "dev-admin" } = {}) {
  if (!secret) throw new Error("JWT_SECRET is missing: run scripts/setup to create .dev.vars");
  const jwt = new SignJWT({ scopes }).setProtectedHeader({ alg }).setSubject(sub).setIssuedAt();
  if (ttlSeconds !== null) jwt.setExpirationTime(Math.floor(Date.now() / 1000) + ttlSeconds);
  return jwt.sign(new TextEncoder().encode(secret));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const scopes = process.argv.slice(2);
  console.log(await adminToken(scopes.length ? scopes : ["catalog:write"]));
}
