from __future__ import annotations

from django.contrib.auth import authenticate
from django.contrib.auth.signals import user_logged_in, user_login_failed
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.authtoken.models import Token
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView


class TokenObtainApi(APIView):
    """Exchange a username and password for an API token."""

    permission_classes = [AllowAny]
    authentication_classes: list = []
    throttle_scope = "login"

    class InputSerializer(serializers.Serializer):
        username = serializers.CharField(max_length=150)
        password = serializers.CharField(max_length=128, style={"input_type": "password"})
        # Required for users who have enrolled a TOTP device (accounts.security.otp_required_for).
        otp = serializers.RegexField(r"^[0-9]{6,8}$", required=False)

    @extend_schema(
        request=InputSerializer,
        responses={
            200: inline_serializer("TokenOutput", {"token": serializers.CharField()}),
            400: OpenApiResponse(description="Missing or malformed fields"),
            401: OpenApiResponse(
                description="Wrong username or password, or a missing/wrong "
                "two-factor code (code `otp_required`)"
            ),
            429: OpenApiResponse(
                description="Too many failed sign-ins for this username from this address"
            ),
        },
        auth=[],
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = authenticate(
            request._request,
            username=data.validated_data["username"],
            password=data.validated_data["password"],
        )
        if user is None or not user.is_active:
            return Response(
                {"detail": "Wrong username or password.", "code": "invalid_credentials"},
                status=status.HTTP_401_UNAUTHORIZED,
            )
        from accounts.security import otp_required_for

        if otp_required_for(user):
            from django_otp import match_token

            code = data.validated_data.get("otp")
            if not code or match_token(user, code) is None:
                # Counts as a failed sign-in for axes and the audit trail: the password alone
                # must not be enough, nor a way to guess codes without limit.
                user_login_failed.send(
                    sender=__name__,
                    credentials={"username": user.get_username()},
                    request=request._request,
                )
                return Response(
                    {"detail": "A valid two-factor code is required.", "code": "otp_required"},
                    status=status.HTTP_401_UNAUTHORIZED,
                )
        # authenticate() alone sends no signal on success: send it, so the sign-in is audited and
        # axes resets this username+IP's failure count.
        user_logged_in.send(sender=user.__class__, request=request._request, user=user)
        token, _ = Token.objects.get_or_create(user=user)
        return Response({"token": token.key})
