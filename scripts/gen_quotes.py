#!/usr/bin/env python3
"""Writes a JSON array of N varied quote requests for the demo catalog to stdout.

Deterministic (seeded), so runs compare: `scripts/gen_quotes.py 100000 > /tmp/burst.json`.
"""
import json
import random
import sys

def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    rng = random.Random(20261124)
    out = []
    for _ in range(count):
        product = rng.choice(["EZ-TERM", "EZ-WL", "EZ-ENDOW"])
        if product == "EZ-TERM":
            coverage = rng.choice([10, 20, 30])
            payment = min(rng.choice([5, 10, 20, 30]), coverage)
        elif product == "EZ-WL":
            coverage = "wholeLife"
            payment = rng.choice([10, 15, 20])
        else:
            coverage = rng.choice([10, 15, 20])
            payment = min(rng.choice([5, 10, 15, 20]), coverage)
        out.append({
            "productCode": product,
            "insured": {
                "birthDate": f"{rng.randint(1966, 2004)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                "gender": rng.choice(["male", "female"]),
            },
            "quoteDate": "2026-11-24",
            "sumInsured": rng.randint(10, 299) * 1_000_000,
            "coveragePeriod": coverage,
            "paymentPeriod": payment,
            "paymentCycle": rng.choice(["annual", "semiannual", "quarterly", "monthly"]),
        })
    json.dump(out, sys.stdout, separators=(",", ":"))

if __name__ == "__main__":
    main()
