"""An offline table of Korean 시/도 and their 시/군/구, each with a point for its coordinates.

The registration form places a patient's home at the point of the 시/군/구 they live in: enough to
rank hospitals by distance (the ranking's distance term changes little within a county), and a
health worker knows the county where they would not know coordinates. Read at run time from
this module only: no geocoding service, no network.

Codes are the 행정표준코드 of the 시/군/구 (5 digits; the first 2 are the 시/도), so that a
stored or posted code keeps its meaning when the table grows. The point is that of the
시/군/구 office (시청/군청/구청), approximate to about a kilometre: in a rural county that is the
main town, where the roads start, while a geometric centroid can fall on a mountain, or, for an
island county such as 신안, in the sea. The table holds the demo's regions and every 시/군 of
강원 and 전남 (where EyeBridge screens), and Seoul's 구; add a 시/도 with all of its 시/군/구.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Province:
    code: str  # 2 digits
    name: str
    name_en: str
    short: str  # the name the platform's sites and dashboard use ("강원")


@dataclass(frozen=True)
class District:
    code: str  # 5 digits, starting with the province's code
    name: str
    name_en: str
    latitude: float
    longitude: float

    @property
    def province_code(self) -> str:
        return self.code[:2]

    @property
    def province(self) -> Province:
        return _PROVINCES[self.province_code]

    @property
    def label(self) -> str:
        """What the patient's region field stores: "강원특별자치도 정선군"."""
        return f"{self.province.name} {self.name}"


PROVINCES: tuple[Province, ...] = (
    Province("51", "강원특별자치도", "Gangwon State", "강원"),
    Province("46", "전라남도", "Jeollanam-do", "전남"),
    Province("11", "서울특별시", "Seoul", "서울"),
)

DISTRICTS: tuple[District, ...] = (
    # 강원특별자치도
    District("51110", "춘천시", "Chuncheon-si", 37.8813, 127.7298),
    District("51130", "원주시", "Wonju-si", 37.3422, 127.9202),
    District("51150", "강릉시", "Gangneung-si", 37.7520, 128.8761),
    District("51170", "동해시", "Donghae-si", 37.5247, 129.1143),
    District("51190", "태백시", "Taebaek-si", 37.1641, 128.9856),
    District("51210", "속초시", "Sokcho-si", 38.2070, 128.5918),
    District("51230", "삼척시", "Samcheok-si", 37.4500, 129.1652),
    District("51720", "홍천군", "Hongcheon-gun", 37.6970, 127.8887),
    District("51730", "횡성군", "Hoengseong-gun", 37.4917, 127.9850),
    District("51750", "영월군", "Yeongwol-gun", 37.1837, 128.4617),
    District("51760", "평창군", "Pyeongchang-gun", 37.3708, 128.3903),
    District("51770", "정선군", "Jeongseon-gun", 37.3807, 128.6609),
    District("51780", "철원군", "Cheorwon-gun", 38.1466, 127.3133),
    District("51790", "화천군", "Hwacheon-gun", 38.1062, 127.7082),
    District("51800", "양구군", "Yanggu-gun", 38.1100, 127.9899),
    District("51810", "인제군", "Inje-gun", 38.0697, 128.1707),
    District("51820", "고성군", "Goseong-gun", 38.3806, 128.4679),
    District("51830", "양양군", "Yangyang-gun", 38.0754, 128.6190),
    # 전라남도
    District("46110", "목포시", "Mokpo-si", 34.8118, 126.3922),
    District("46130", "여수시", "Yeosu-si", 34.7604, 127.6622),
    District("46150", "순천시", "Suncheon-si", 34.9507, 127.4872),
    District("46170", "나주시", "Naju-si", 35.0160, 126.7108),
    District("46230", "광양시", "Gwangyang-si", 34.9407, 127.6959),
    District("46710", "담양군", "Damyang-gun", 35.3211, 126.9882),
    District("46720", "곡성군", "Gokseong-gun", 35.2820, 127.2920),
    District("46730", "구례군", "Gurye-gun", 35.2025, 127.4629),
    District("46770", "고흥군", "Goheung-gun", 34.6112, 127.2852),
    District("46780", "보성군", "Boseong-gun", 34.7714, 127.0800),
    District("46790", "화순군", "Hwasun-gun", 35.0645, 126.9865),
    District("46800", "장흥군", "Jangheung-gun", 34.6817, 126.9070),
    District("46810", "강진군", "Gangjin-gun", 34.6420, 126.7672),
    District("46820", "해남군", "Haenam-gun", 34.5734, 126.5993),
    District("46830", "영암군", "Yeongam-gun", 34.8002, 126.6968),
    District("46840", "무안군", "Muan-gun", 34.9904, 126.4816),
    District("46860", "함평군", "Hampyeong-gun", 35.0660, 126.5165),
    District("46870", "영광군", "Yeonggwang-gun", 35.2772, 126.5120),
    District("46880", "장성군", "Jangseong-gun", 35.3018, 126.7849),
    District("46890", "완도군", "Wando-gun", 34.3110, 126.7550),
    District("46900", "진도군", "Jindo-gun", 34.4868, 126.2635),
    District("46910", "신안군", "Sinan-gun", 34.8269, 126.3514),
    # 서울특별시
    District("11110", "종로구", "Jongno-gu", 37.5735, 126.9790),
    District("11140", "중구", "Jung-gu", 37.5638, 126.9976),
    District("11170", "용산구", "Yongsan-gu", 37.5326, 126.9905),
    District("11200", "성동구", "Seongdong-gu", 37.5633, 127.0371),
    District("11215", "광진구", "Gwangjin-gu", 37.5385, 127.0823),
    District("11230", "동대문구", "Dongdaemun-gu", 37.5744, 127.0400),
    District("11260", "중랑구", "Jungnang-gu", 37.6066, 127.0927),
    District("11290", "성북구", "Seongbuk-gu", 37.5894, 127.0167),
    District("11305", "강북구", "Gangbuk-gu", 37.6396, 127.0257),
    District("11320", "도봉구", "Dobong-gu", 37.6688, 127.0471),
    District("11350", "노원구", "Nowon-gu", 37.6542, 127.0568),
    District("11380", "은평구", "Eunpyeong-gu", 37.6027, 126.9291),
    District("11410", "서대문구", "Seodaemun-gu", 37.5791, 126.9368),
    District("11440", "마포구", "Mapo-gu", 37.5663, 126.9019),
    District("11470", "양천구", "Yangcheon-gu", 37.5170, 126.8665),
    District("11500", "강서구", "Gangseo-gu", 37.5509, 126.8495),
    District("11530", "구로구", "Guro-gu", 37.4954, 126.8874),
    District("11545", "금천구", "Geumcheon-gu", 37.4569, 126.8955),
    District("11560", "영등포구", "Yeongdeungpo-gu", 37.5264, 126.8962),
    District("11590", "동작구", "Dongjak-gu", 37.5124, 126.9393),
    District("11620", "관악구", "Gwanak-gu", 37.4784, 126.9516),
    District("11650", "서초구", "Seocho-gu", 37.4837, 127.0324),
    District("11680", "강남구", "Gangnam-gu", 37.5172, 127.0473),
    District("11710", "송파구", "Songpa-gu", 37.5145, 127.1059),
    District("11740", "강동구", "Gangdong-gu", 37.5301, 127.1238),
)

_PROVINCES = {p.code: p for p in PROVINCES}
_DISTRICTS = {d.code: d for d in DISTRICTS}
EARTH_RADIUS_KM = 6371.0088


def province(code: str) -> Province | None:
    return _PROVINCES.get(code)


def district(code: str) -> District | None:
    return _DISTRICTS.get(code)


def districts_of(province_code: str) -> list[District]:
    return [d for d in DISTRICTS if d.province_code == province_code]


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine): ample for "is this point near that county"."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    h = (
        math.sin((p2 - p1) / 2) ** 2
        + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def nearest_district(latitude: float, longitude: float, *, within_km: float) -> District | None:
    """The district whose point is nearest, if it is within ``within_km``; else None."""
    best = min(DISTRICTS, key=lambda d: distance_km(latitude, longitude, d.latitude, d.longitude))
    if distance_km(latitude, longitude, best.latitude, best.longitude) > within_km:
        return None
    return best


if set(_PROVINCES) != {d.province_code for d in DISTRICTS} or len(_DISTRICTS) != len(DISTRICTS):
    raise RuntimeError("screening.regions: every province needs districts, every code is unique")
