import pytest

from srlib.errors import ProfileError
from srlib.profiles import PROFILE_NAMES, get_profile


def test_known_profiles_and_pick():
    for name in PROFILE_NAMES:
        p = get_profile(name)
        assert p.name == name
        assert p.hr_patch == p.lr_patch * p.scale
        assert p.pick(smoke=1, standard=2, paper=3) == {"smoke": 1, "standard": 2, "paper": 3}[name]
    assert get_profile(" Smoke ").name == "smoke"


def test_budgets_grow_with_profile():
    s, t, p = (get_profile(n) for n in PROFILE_NAMES)
    assert s.num_feat <= t.num_feat <= p.num_feat
    assert s.lr_patch <= t.lr_patch <= p.lr_patch


def test_wrong_profile_lists_valid_names():
    with pytest.raises(ProfileError, match="smoke, standard, paper") as err:
        get_profile("fast")
    assert isinstance(err.value, ValueError)
    assert "'fast'" in str(err.value)
