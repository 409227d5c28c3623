from django.http import HttpResponse
from django.urls import path

app_name = "referrals"
# Placeholder until the hospital portal lands.
urlpatterns: list = [path("", lambda request: HttpResponse("referrals"), name="inbox")]
