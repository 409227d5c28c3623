"""Provision kiosks from a shell: register one (its secret is printed once), rotate a secret, retire
a kiosk, or list them. Each change writes an audit entry (accounts.audit), in the same transaction.

    manage.py kiosk create --pharmacy 3 --name "Kiosk 2" [--kiosk-id K-SEOUL-2] [--location ...]
    manage.py kiosk rotate K-SEOUL-2
    manage.py kiosk retire K-SEOUL-2
    manage.py kiosk list [--pharmacy 3]

``--by USERNAME`` names the platform admin who asked for the change; without it the audit entry
names the operating-system account (``shell:<login>``). The same operations are in the Django
admin (Pharmacy > Kiosks)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import User
from config.errors import ServiceError
from pharmacy import services
from pharmacy.models import Kiosk, Pharmacy


class Command(BaseCommand):
    help = "Register, rotate the secret of, retire or list kiosks (audited)."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="operation", required=True)
        create = sub.add_parser("create", help="register a kiosk and print its secret once")
        create.add_argument("--pharmacy", required=True, help="pharmacy id, or its exact name")
        create.add_argument("--name", required=True)
        create.add_argument("--kiosk-id", default=None, help="default: a generated K-XXXXXXXX")
        create.add_argument("--location", default="")
        create.add_argument("--latitude", type=float, default=None)
        create.add_argument("--longitude", type=float, default=None)
        rotate = sub.add_parser("rotate", help="give a kiosk a new secret and print it once")
        rotate.add_argument("kiosk_id")
        retire = sub.add_parser("retire", help="refuse a kiosk from now on (nothing is deleted)")
        retire.add_argument("kiosk_id")
        listing = sub.add_parser("list", help="list kiosks (never their secrets)")
        listing.add_argument("--pharmacy", default=None)
        for p in (create, rotate, retire):
            p.add_argument("--by", default=None, help="username of the admin asking for it")

    def handle(self, *args, **options) -> None:
        operation = options["operation"]
        via = f"manage.py kiosk {operation}"
        try:
            if operation == "list":
                self._list(options["pharmacy"])
                return
            actor = self._actor(options["by"])
            if operation == "create":
                kiosk, secret = services.kiosk_register(
                    pharmacy=self._pharmacy(options["pharmacy"]),
                    name=options["name"],
                    kiosk_id=options["kiosk_id"],
                    location=options["location"],
                    latitude=options["latitude"],
                    longitude=options["longitude"],
                    actor=actor,
                    via=via,
                )
                self._print_secret(kiosk, secret)
            elif operation == "rotate":
                kiosk = self._kiosk(options["kiosk_id"])
                if kiosk.status == Kiosk.Status.RETIRED:
                    raise CommandError(f"kiosk {kiosk.kiosk_id} is retired: it gets no new secret")
                secret = services.kiosk_rotate_secret(kiosk=kiosk, actor=actor, via=via)
                self._print_secret(kiosk, secret)
            elif operation == "retire":
                kiosk, changed = services.kiosk_retire(
                    kiosk=self._kiosk(options["kiosk_id"]), actor=actor, via=via
                )
                self.stdout.write(
                    f"kiosk {kiosk.kiosk_id} retired"
                    if changed
                    else f"kiosk {kiosk.kiosk_id} was already retired"
                )
        except ServiceError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from exc

    def _print_secret(self, kiosk: Kiosk, secret: str) -> None:
        self.stdout.write(f"kiosk {kiosk.kiosk_id} secret {secret}")
        self.stderr.write(
            "Configure the kiosk with this secret now: it is not stored and cannot be shown again. "
            f"Header: Authorization: Kiosk {kiosk.kiosk_id}:<secret>"
        )

    def _list(self, pharmacy: str | None) -> None:
        kiosks = Kiosk.objects.select_related("pharmacy").order_by("pharmacy_id", "kiosk_id")
        if pharmacy:
            kiosks = kiosks.filter(pharmacy=self._pharmacy(pharmacy))
        for k in kiosks:
            seen = k.last_heartbeat_at.isoformat() if k.last_heartbeat_at else "never"
            self.stdout.write(f"{k.kiosk_id}\t{k.status}\t{k.pharmacy_id}\t{k.name}\t{seen}")

    @staticmethod
    def _actor(username: str | None) -> User | None:
        if username is None:
            return None
        user = User.objects.filter(username=username, is_active=True).first()
        if user is None or not user.is_platform_admin:
            raise CommandError(f"--by {username}: no active platform admin of that name")
        return user

    @staticmethod
    def _pharmacy(value: str) -> Pharmacy:
        found = Pharmacy.objects.filter(pk=int(value)) if value.isdigit() else None
        if not found:
            found = Pharmacy.objects.filter(name=value)
        if len(found) != 1:
            raise CommandError(f"--pharmacy {value}: no single pharmacy with that id or name")
        return found[0]

    @staticmethod
    def _kiosk(kiosk_id: str) -> Kiosk:
        kiosk = Kiosk.objects.filter(kiosk_id=kiosk_id).first()
        if kiosk is None:
            raise CommandError(f"no kiosk {kiosk_id}")
        return kiosk
