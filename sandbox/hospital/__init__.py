"""The hospital role (医疗机构及检查检验机构): generates exams and files, serves the files, sends hop 1."""
