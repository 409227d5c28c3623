from django.urls import path

from referrals import apis

urlpatterns = [
    path("referrals/", apis.ReferralListCreateApi.as_view(), name="referrals-list"),
    path("referrals/candidates/", apis.CandidatesApi.as_view(), name="referrals-candidates"),
    path("referrals/<int:referral_id>/", apis.ReferralDetailApi.as_view(), name="referrals-detail"),
    path(
        "referrals/<int:referral_id>/fhir/", apis.ReferralFhirApi.as_view(), name="referrals-fhir"
    ),
    path(
        "referrals/<int:referral_id>/accept/",
        apis.ReferralAcceptApi.as_view(),
        name="referrals-accept",
    ),
    path(
        "referrals/<int:referral_id>/decline/",
        apis.ReferralDeclineApi.as_view(),
        name="referrals-decline",
    ),
    path(
        "referrals/<int:referral_id>/attended/",
        apis.ReferralAttendedApi.as_view(),
        name="referrals-attended",
    ),
    path(
        "referrals/<int:referral_id>/no-show/",
        apis.ReferralNoShowApi.as_view(),
        name="referrals-no-show",
    ),
    path(
        "referrals/<int:referral_id>/complete/",
        apis.ReferralCompleteApi.as_view(),
        name="referrals-complete",
    ),
    path(
        "referrals/<int:referral_id>/cancel/",
        apis.ReferralCancelApi.as_view(),
        name="referrals-cancel",
    ),
]
