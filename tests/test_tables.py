"""Tables laid out with spaces (``assistant.tables``): their rows read as cells, as tab-separated rows are."""

from assistant.tables import figure_cells, row_cells, space_tables

REPORT_2019 = """Table 4. Increase/decrease in the number of international and national staff in 2019
and previous years

Category 1995 2005 2015 2016 2017 2018 2019

International Professional 222 667 1 062 1 193 1 467 1 769 2 006

Total 1 656 5 397 9 282 10 184 10 978 12 673 14 811

Percentage of women in 2019 52% 31% 50% 47% 41% 41% 34%
Annex II
""".splitlines()

REPORT_2020 = """        Table 1. Number of men and women at the international Professional level (2016–2020)

                                                    2016             2017           2018           2019             2020

     Men                                             662             788            928            1 061            1 119
     Women                                           531             679            841             945             1 066
     Change in percentage of women
""".splitlines()


def test_single_spaced_figures_group_thousands_by_their_size():
    # 222 667 could be one figure (222,667); beside 1 062 and 1 193 it is two
    assert figure_cells("International Professional 222 667 1 062 1 193 1 467 1 769 2 006", 8) == [
        "International Professional", "222", "667", "1 062", "1 193", "1 467", "1 769", "2 006"]


def test_a_label_may_end_in_a_year():
    assert figure_cells("Percentage of women in 2019 52% 31% 50% 47% 41% 41% 34%", 8)[0] == "Percentage of women in 2019"


def test_a_row_that_cannot_be_read_as_the_header_s_width_is_not_a_row():
    assert figure_cells("Total 1 656 5 397", 8) is None


def test_space_tables_find_the_header_and_rows_and_nothing_else():
    found = space_tables(REPORT_2019)
    assert found[3] == ["Category", "1995", "2005", "2015", "2016", "2017", "2018", "2019"]
    assert found[7][:3] == ["Total", "1 656", "5 397"]
    assert set(found) == {3, 5, 7, 9}  # the caption and the annex heading are text


def test_aligned_columns_and_a_header_without_a_label_cell():
    found = space_tables(REPORT_2020)
    assert found[2] == ["", "2016", "2017", "2018", "2019", "2020"]
    assert found[4] == ["Men", "662", "788", "928", "1 061", "1 119"]
    assert 6 not in found  # a label without figures ends the table


def test_row_cells_read_every_layout_under_its_header():
    assert row_cells("Unearmarked\t\t3 508 772", "Donor\tEarmarked\tUnearmarked") == ["Unearmarked", "", "3 508 772"]
    assert row_cells("     Men      662     788", None) == ["Men", "662", "788"]
    assert row_cells("Total 1 656 5 397 9 282", "Category\t1995\t2005\t2015") == ["Total", "1 656", "5 397", "9 282"]
