"""psycopg2 against a pgwire grant. psycopg2 writes parameters into the
statement text itself ('2026-03-01'::date, '...'::timestamp, Decimal as a
number, None as NULL); each case runs with parameters and with the literal
statement. COPY ... TO STDOUT goes through copy_expert. Prints one JSON
object. Usage: python3 psycopg2_client.py <dsn>; the password comes from
PGPASSWORD."""
import datetime
import decimal
import io
import json
import sys

import psycopg2

CASES = [
    ("date", "SELECT id FROM orders WHERE placed >= %s ORDER BY id",
     (datetime.date(2026, 3, 1),),
     "SELECT id FROM orders WHERE placed >= '2026-03-01' ORDER BY id"),
    ("datetime", "SELECT id FROM orders WHERE shipped_at < %s ORDER BY id",
     (datetime.datetime(2026, 4, 1, 12, 0, 0),),
     "SELECT id FROM orders WHERE shipped_at < '2026-04-01 12:00:00' ORDER BY id"),
    ("Decimal", "SELECT id FROM orders WHERE amount > %s ORDER BY id",
     (decimal.Decimal("100.5"),),
     "SELECT id FROM orders WHERE amount > 100.5 ORDER BY id"),
    ("None", "SELECT id FROM orders WHERE note IS NOT DISTINCT FROM %s ORDER BY id",
     (None,),
     "SELECT id FROM orders WHERE note IS NULL ORDER BY id"),
    ("text", "SELECT id, customer FROM orders WHERE customer = %s ORDER BY id",
     ("O'Brien",),
     "SELECT id, customer FROM orders WHERE customer = 'O''Brien' ORDER BY id"),
]

COPY = ("COPY (SELECT id, customer, amount, placed, note FROM orders ORDER BY id) "
        "TO STDOUT WITH (FORMAT csv, HEADER)")


def _all(conn, sql):
    cur = conn.cursor()
    cur.execute(sql)
    rows = cur.fetchall()
    cur.close()
    return rows


def main():
    report = {}
    try:
        conn = psycopg2.connect(sys.argv[1])
        conn.autocommit = True
        cur = conn.cursor()
        for name, with_params, values, literal in CASES:
            cur.execute(with_params, values)
            a = [list(map(str, row)) for row in cur.fetchall()]
            cur.execute(literal)
            b = [list(map(str, row)) for row in cur.fetchall()]
            report[name] = {"parameters": a, "literals": b}
        out = io.StringIO()
        cur.copy_expert(COPY, out)
        report["copy"] = out.getvalue()

        # A named (server-side) cursor: DECLARE, FETCH FORWARD n, CLOSE,
        # inside the transaction psycopg2 opens.
        conn.autocommit = False
        named = conn.cursor("orders_by_id")
        named.itersize = 4
        named.execute("SELECT id, customer FROM orders ORDER BY id")
        first = named.fetchmany(3)
        rest = [row for row in named]
        named.close()
        conn.commit()
        report["named cursor"] = {
            "parameters": [list(map(str, r)) for r in first + rest],
            "literals": [list(map(str, r)) for r in
                         _all(conn, "SELECT id, customer FROM orders ORDER BY id")],
            "first": len(first),
        }
        conn.close()
    except Exception as e:  # reported, the test prints it
        report["error"] = f"{getattr(e, 'pgcode', '')} {e}"
    print(json.dumps(report))


main()
