from django.urls import path

from accounts.apis import TokenObtainApi

urlpatterns = [path("auth/token/", TokenObtainApi.as_view(), name="api-token")]
