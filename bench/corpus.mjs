// Writes the validation benchmark's corpus to stdout: NDJSON track messages
// of the shop example's "Order Completed" event, about 1 KB each, the way
// analytics.js sends them, 10% of them invalid in varied ways.
// Deterministic: the same seed writes the same bytes.
//
// usage: node bench/corpus.mjs [COUNT] > corpus.ndjson

const count = Number(process.argv[2] ?? 20000);
let seed = 0x9e3779b9;
function rand() {
  // xorshift32
  seed ^= seed << 13; seed >>>= 0;
  seed ^= seed >>> 17;
  seed ^= seed << 5; seed >>>= 0;
  return seed / 0x100000000;
}
const pick = (a) => a[Math.floor(rand() * a.length)];
const int = (lo, hi) => lo + Math.floor(rand() * (hi - lo + 1));
const hex = (n) => Array.from({ length: n }, () => "0123456789abcdef"[int(0, 15)]).join("");
const uuid = () => `${hex(8)}-${hex(4)}-4${hex(3)}-${pick(["8", "9", "a", "b"])}${hex(3)}-${hex(12)}`;
const brands = ["Acme", "Northwind", "Globex", "Initech", "Umbrella"];
const categories = ["Shoes", "Shirts", "Bags", "Outdoor", "Kitchen"];

function product() {
  const price = int(100, 99999) / 100;
  return {
    product_id: `prod_${hex(10)}`,
    sku: `${pick(["ABC", "XYZ", "QRS"])}-${int(1000, 999999)}`,
    name: `${pick(brands)} ${pick(["Runner", "Classic", "Trail", "Pro"])} ${int(1, 99)}`,
    brand: pick(brands),
    category: pick(categories),
    price,
    quantity: int(1, 5),
    position: int(1, 40),
    url: `https://acme-shop.example/p/${hex(8)}`,
  };
}

function message(i) {
  const products = Array.from({ length: int(1, 3) }, product);
  const revenue = Math.round(products.reduce((s, p) => s + p.price * p.quantity, 0) * 100) / 100;
  const properties = {
    order_id: `ord_${hex(12)}`,
    checkout_id: `chk_${hex(12)}`,
    total: Math.round((revenue + 4.99) * 100) / 100,
    revenue,
    shipping: 4.99,
    tax: Math.round(revenue * 0.2 * 100) / 100,
    currency: pick(["EUR", "GBP", "USD"]),
    coupon: rand() < 0.3 ? "SPRING10" : null,
    products,
  };
  const msg = {
    type: "track",
    event: "Order Completed",
    anonymousId: uuid(),
    userId: `user_${int(1, 500000)}`,
    messageId: `ajs-next-${Date.UTC(2026, 10, 25)}-${uuid()}`,
    timestamp: "2026-11-25T10:15:30.123Z",
    sentAt: "2026-11-25T10:15:30.456Z",
    properties,
    context: {
      library: { name: "analytics.js", version: "next-1.70.0" },
      page: {
        path: "/checkout/complete",
        referrer: "https://acme-shop.example/checkout",
        title: "Thank you",
        url: "https://acme-shop.example/checkout/complete",
      },
      userAgent: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36",
      locale: "en-GB",
    },
    integrations: {},
  };
  if (i % 10 === 9) {
    // 10% invalid, each a realistic mistake.
    switch (int(0, 5)) {
      case 0: properties.revenue = String(revenue); break;
      case 1: delete properties.order_id; break;
      case 2: properties.currency = "JPY"; break;
      case 3: products[0].quantity = 0; break;
      case 4: products[0].sku = "abc-12"; break;
      case 5: properties.discount_code = "SPRING10"; break; // strict object
    }
  }
  return JSON.stringify(msg);
}

const out = [];
for (let i = 0; i < count; i++) out.push(message(i));
process.stdout.write(out.join("\n") + "\n");
