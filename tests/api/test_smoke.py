"""test_smoke.py - vmlabd starts, answers, and stops cleanly."""

import vmlab


class Smoke(vmlab.DaemonTest):
    def test_healthz(self):
        self.assertEqual(self.ok("GET", "/healthz"), {"status": "ok"})

    def test_create_and_translate(self):
        m = self.machine("smoke", arch="i386", memory="2GiB")
        self.assertEqual(m["arch"], "i386")
        self.assertEqual(m["vmsplit"], "3G/1G")
        p = self.ok("POST", "/v1/machines/smoke/processes", {"name": "init"},
                    status=201)
        self.assertEqual(p["pid"], 1)
        t = self.ok("POST", "/v1/machines/smoke/translate",
                    {"va": "0xc0001234", "pid": 1, "explain": True})
        self.assertFalse(t["ok"])
        self.assertEqual(t["fault"]["kind"], "protection")
        self.assertEqual(t["fault"]["error_code"], "0x5")
        self.assertEqual(t["walk"][0]["index"], 768)

    def test_unknown_route_and_method(self):
        self.problem("GET", "/v1/nothing", status=404, code="no_such_route")
        self.problem("PUT", "/v1/machines", status=405,
                     code="method_not_allowed")


if __name__ == "__main__":
    vmlab.main()
