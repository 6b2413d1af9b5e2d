// Development admin tokens: HS256 JWTs signed with JWT_SECRET from .dev.vars (jose).
import { SignJWT } from "jose";
import { devVars } from "./backend.mjs";

// Admin tokens carry aud "shop-admin" (order access tokens carry "shop-order"; neither is
// accepted as the other), iat, and exp at most 24 hours later.
export async function adminToken(
  scopes,
  { ttlSeconds = 3600, secret = devVars().JWT_SECRET, alg = "HS256", sub = "dev-admin", aud = "shop-admin", iat = true, nbf } = {},
) {
  if (!secret) throw new Error("JWT_SECRET is missing: run scripts/setup to create .dev.vars");
  const jwt = new SignJWT({ scopes }).setProtectedHeader({ alg }).setSubject(sub);
  if (aud !== null) jwt.setAudience(aud);
  if (iat === true) jwt.setIssuedAt();
  else if (typeof iat === "number") jwt.setIssuedAt(iat);
  if (nbf !== undefined) jwt.setNotBefore(nbf);
  if (ttlSeconds !== null) jwt.setExpirationTime(Math.floor(Date.now() / 1000) + ttlSeconds);
  return jwt.sign(new TextEncoder().encode(secret));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const scopes = process.argv.slice(2);
  console.log(await adminToken(scopes.length ? scopes : ["catalog:write"]));
}
