"""schemathesis hooks for tests/openapi.test.mjs (loaded through SCHEMATHESIS_HOOKS).

What a real client does and a generator cannot know:
- a fresh Idempotency-Key for each distinct request (a generated key is often "0" again, which
  the API rightly refuses with another body); a key that breaks the documented pattern is left
  as generated, so the API's refusal of it is still tested;
- the bearer token the route is for: a signed-in customer's for `/v1/me…`, otherwise the admin
  token with every scope (both minted by the test and passed in the environment);
- a product that exists: an item added to a cart names a SKU of the seeded catalog that has stock
  and a price in most currencies, one unit, so the stateful phase can go on from the cart to its
  checkout and the order's operations (a SKU or quantity that breaks the document is left as
  generated).
"""

import os
import re
import uuid

import schemathesis

VALID_KEY = re.compile(r"^[\x21-\x7E]{1,255}$")
ADMIN = os.environ["SCHEMATHESIS_ADMIN_TOKEN"]
CUSTOMER = os.environ["SCHEMATHESIS_CUSTOMER_TOKEN"]
SKU = re.compile(r"^[A-Z0-9][A-Z0-9-]{0,63}$")
IN_STOCK = os.environ["SCHEMATHESIS_SKU"]


@schemathesis.hook
def map_body(context, body):
    operation = context.operation
    if operation is None or (operation.method.upper(), operation.path) != ("POST", "/v1/carts/{cart_id}/items"):
        return body
    if isinstance(body, dict) and isinstance(body.get("sku"), str) and SKU.fullmatch(body["sku"]):
        quantity = body.get("quantity")
        if isinstance(quantity, int) and not isinstance(quantity, bool) and 1 <= quantity <= 10000:
            return {**body, "sku": IN_STOCK, "quantity": 1}
    return body


@schemathesis.hook
def before_call(context, case, **kwargs):
    key = (case.headers or {}).get("Idempotency-Key")
    if isinstance(key, str) and VALID_KEY.fullmatch(key):
        case.headers = {**case.headers, "Idempotency-Key": str(uuid.uuid4())}


# schemathesis' own auth provider (not a header set by hand), so that the cases it generates
# without credentials on purpose still go without them.
@schemathesis.auth(refresh_interval=None, retry_on=[])
class BearerTokens:
    def get(self, case, context):
        return CUSTOMER if case.path == "/v1/me" or case.path.startswith("/v1/me/") else ADMIN

    def set(self, case, data, context):
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}
