from __future__ import annotations

import re

from sandbox.config import Settings
from sandbox.spec.checksums import id_valid, uscc_valid
from sandbox.spec.dicts import HOSP_LV
from sandbox.spec.formats import MEDINS_CODE_RE
from sandbox.synth.institutions import org_code_check, synth_center, synth_hospitals, workforce
from sandbox.synth.regions import REGIONS


def test_synthetic_hospitals_have_valid_codes_in_their_region() -> None:
    for region in REGIONS:
        for inst in synth_hospitals(region, 9, seed=4):
            assert MEDINS_CODE_RE.match(inst.code) and len(inst.code) == 12
            assert inst.code[1:7] == inst.admdvs and REGIONS[region].county(inst.admdvs) is not None
            assert uscc_valid(inst.uscc) and inst.uscc.startswith("12") and inst.uscc[2:8] == inst.admdvs
            assert inst.uscc[16] == org_code_check(inst.uscc[8:16])  # 组织机构代码 check (GB 11714)
            assert inst.hosp_lv in HOSP_LV


def test_default_region_is_guangyuan_and_its_counties() -> None:
    hospitals = synth_hospitals(count=8, seed=1)
    assert {h.admdvs for h in hospitals} <= {"510802", "510811", "510812", "510821", "510822", "510823", "510824"}
    assert hospitals[0].name == "广元市第一人民医院" and hospitals[0].hosp_lv == "02"


def test_sharing_center_has_its_own_code_and_uscc() -> None:
    center = synth_center("510800", seed=1)
    assert center.role == "center" and center.code == "C51080000001"
    assert uscc_valid(center.uscc) and center.uscc not in {h.uscc for h in synth_hospitals(count=5, seed=1)}


def test_settings_institutions_pass_the_checksums() -> None:
    s = Settings()
    for inst in s.institutions:
        assert uscc_valid(inst.uscc), inst


def test_gb11714_check_character_follows_the_mod11_rule() -> None:
    # D=13: 13*3+2*7+1*9+4*10+3*5+5*8+6*4+9*2 = 199; 11 - 199 % 11 = 10 -> "X"; 11 -> "0".
    assert org_code_check("D2143569") == "X"
    assert org_code_check("00000000") == "0"
    assert org_code_check("45072100") == str(11 - (4 * 3 + 5 * 7 + 7 * 10 + 2 * 5 + 1 * 8) % 11)


def test_staff_have_valid_resident_ids_and_devices_per_modality() -> None:
    s = Settings()
    force = workforce(s.hospitals[0], 1)
    people = force.radiologists + force.chiefs + force.technicians + force.sonographers + force.clinicians
    assert all(id_valid(p.idcard) for p in people)
    assert len({p.code for p in people}) == len(people)
    assert set(force.devices) == {"CT", "MR", "DX", "CR", "US"}
    assert all(re.fullmatch(r"H\d{11}(CT|MR|DX|CR|US)\d{2}", d.code) for ds in force.devices.values() for d in ds)
    assert workforce(s.hospitals[0], 1) is force  # cached: the same staff for the same seed
