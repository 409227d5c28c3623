from django.urls import path

from referrals import letter_views, views

app_name = "referrals"
urlpatterns = [
    path("", views.inbox, name="inbox"),
    path("<int:referral_id>/", views.referral_detail, name="detail"),
    path("<int:referral_id>/letter/", letter_views.referral_letter, name="letter"),
    path("<int:referral_id>/send/", views.referral_send, name="send"),
    path("<int:referral_id>/accept/", views.referral_accept, name="accept"),
    path("<int:referral_id>/decline/", views.referral_decline, name="decline"),
    path("<int:referral_id>/attended/", views.referral_attended, name="attended"),
    path("<int:referral_id>/no-show/", views.referral_no_show, name="no_show"),
    path("<int:referral_id>/complete/", views.referral_complete, name="complete"),
    path("<int:referral_id>/cancel/", views.referral_cancel, name="cancel"),
]
