from django.http import HttpResponse
from django.urls import path

app_name = "pharmacy"
# Placeholder until the pharmacy portal lands.
urlpatterns: list = [path("", lambda request: HttpResponse("pharmacy"), name="queue")]
