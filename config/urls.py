from django.contrib import admin
from django.urls import include, path
from django.views.i18n import JavaScriptCatalog
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from accounts import views as account_views

api_v1 = [
    path("", include("accounts.api_urls")),
    path("", include("screening.api_urls")),
    path("", include("grading.api_urls")),
    path("", include("pharmacy.api_urls")),
    path("", include("referrals.api_urls")),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
]

urlpatterns = [
    path("", account_views.home, name="home"),
    path("accounts/", include("accounts.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("jsi18n/", JavaScriptCatalog.as_view(), name="javascript-catalog"),
    path("screening/", include("screening.urls")),
    path("grading/", include("grading.urls")),
    path("pharmacy/", include("pharmacy.urls")),
    path("referrals/", include("referrals.urls")),
    path("dashboard/", include("dashboard.urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
]


handler404 = "config.api.not_found_handler"
