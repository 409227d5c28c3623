"""A kiosk on the command line, through the real HTTP API:

python manage.py kiosk_simulate --kiosk K-DEMO-1 --secret S --code ABCD-EFGH --base-url http://127.0.0.1:8000
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
import uuid

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Present a dispense code as a kiosk would: reserve, show guidance, confirm, complete (or --jam)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--kiosk", required=True)
        parser.add_argument(
            "--secret",
            default=os.environ.get("EYEBRIDGE_KIOSK_SECRET"),
            help="the kiosk secret (or set EYEBRIDGE_KIOSK_SECRET, which keeps it out of shell history)",
        )
        parser.add_argument("--code", required=True)
        parser.add_argument("--base-url", default="http://127.0.0.1:8000")
        parser.add_argument("--jam", action="store_true", help="report a jam instead of completing")
        parser.add_argument(
            "--yes", action="store_true", help="the patient confirms the guidance without a prompt"
        )
        parser.add_argument(
            "--call", action="store_true", help="also ask the pharmacist for a call"
        )

    def _post(self, path: str, body: dict, **headers: str) -> tuple[int, dict]:
        request = urllib.request.Request(  # noqa: S310 - operator-given URL
            f"{self.base}/api/v1/kiosk/{path}",
            data=json.dumps(body).encode(),
            method="POST",
            headers={"Content-Type": "application/json", "Authorization": self.auth, **headers},
        )
        try:
            with urllib.request.urlopen(request, timeout=15) as response:  # noqa: S310
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            try:
                return exc.code, json.loads(exc.read() or b"{}")
            except ValueError:
                return exc.code, {}
        except urllib.error.URLError as exc:
            raise CommandError(f"cannot reach {self.base}: {exc.reason}") from exc

    def handle(self, *args, **options) -> None:
        if not options["secret"]:
            raise CommandError("give the kiosk secret with --secret or EYEBRIDGE_KIOSK_SECRET")
        self.base = options["base_url"].rstrip("/")
        self.auth = f"Kiosk {options['kiosk']}:{options['secret']}"
        status, body = self._post("heartbeat/", {"status": "ok", "firmware": "cli"})
        if status != 200:
            raise CommandError(f"heartbeat refused ({status}): {body}")
        status, body = self._post(
            "dispenses/", {"code": options["code"]}, **{"Idempotency-Key": str(uuid.uuid4())}
        )
        if status != 201:
            raise CommandError(f"code refused ({status}): {body.get('code')} {body.get('detail')}")
        dispense_id = body["id"]
        self.stdout.write(f"dispense {dispense_id} reserved; release:")
        for item in body["items"]:
            self.stdout.write(
                f"  slot {item['slot']}: {item['name_ko']} ({item['name_en']}) x{item['quantity']} lot {item['lot_number']}"
            )
        for lang in ("ko", "en"):
            c = body["counselling"][lang]
            self.stdout.write(
                f"[{lang}] {c['dose']} | {c['frequency']} | {c['duration']}\n     {c['warnings']}"
            )
        if options["call"]:
            status, call = self._post(
                "call-requests/", {"dispense": dispense_id, "message": "CLI call request"}
            )
            self.stdout.write(f"call request {call.get('id')} ({status})")
        if (
            not options["yes"]
            and input("Patient confirms the guidance? [y/N] ").strip().lower() != "y"
        ):
            status, _ = self._post(
                f"dispenses/{dispense_id}/fail/", {"reason": "guidance not confirmed"}
            )
            raise CommandError("guidance not confirmed; reservation released")
        status, body = self._post(f"dispenses/{dispense_id}/confirm-counselling/", {})
        if status != 200:
            raise CommandError(f"confirm refused ({status}): {body}")
        if options["jam"]:
            status, body = self._post(
                f"dispenses/{dispense_id}/fail/", {"reason": "jam (simulated)"}
            )
        else:
            status, body = self._post(f"dispenses/{dispense_id}/complete/", {})
        if status != 200:
            raise CommandError(
                f"{'fail' if options['jam'] else 'complete'} refused ({status}): {body}"
            )
        self.stdout.write(self.style.SUCCESS(f"dispense {dispense_id}: {body['status']}"))
