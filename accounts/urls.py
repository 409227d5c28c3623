from django.contrib.auth import views as auth_views
from django.urls import path

from accounts import notifications_views, views

app_name = "accounts"
urlpatterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("language/", views.set_language, name="set_language"),
    path("2fa/setup/", views.otp_setup, name="otp_setup"),
    path("2fa/verify/", views.otp_verify, name="otp_verify"),
    path("notifications/", notifications_views.notification_list, name="notifications"),
    path(
        "notifications/read-all/",
        notifications_views.notifications_read_all,
        name="notifications_read_all",
    ),
    path(
        "notifications/settings/",
        notifications_views.notification_preferences,
        name="notification_preferences",
    ),
    path(
        "notifications/<int:notification_id>/read/",
        notifications_views.notification_read,
        name="notification_read",
    ),
]
