"""Synthetic exams that look real: institutions, Faker patients, exam records, DICOM studies, PDF reports.

    factory = ExamFactory(hospital, center.uscc, seed, index_profile=settings.index_profile)
    exam = factory.exam(0)                 # the same exam 0 for the same seed, however many are made
    record = exam.record(base_url)         # hop-1 `data` entry (plain dict, the document's field order)
    write_study(exam, folder, ImageSpec()) # DICOM files, one instance at a time
    render_report(exam)                    # PDF bytes
"""
