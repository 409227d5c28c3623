from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.services import InvalidCredentials, OTPRequired, api_token_obtain


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
        try:
            token = api_token_obtain(
                request=request._request,
                username=data.validated_data["username"],
                password=data.validated_data["password"],
                otp=data.validated_data.get("otp"),
            )
        except InvalidCredentials:
            return Response(
                {"detail": "Wrong username or password.", "code": "invalid_credentials"},
                status=status.HTTP_401_UNAUTHORIZED,
            )
        except OTPRequired:
            return Response(
                {"detail": "A valid two-factor code is required.", "code": "otp_required"},
                status=status.HTTP_401_UNAUTHORIZED,
            )
        return Response({"token": token.key})
