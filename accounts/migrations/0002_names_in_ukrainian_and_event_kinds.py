"""Organisations get a name in Ukrainian (the intermediaries' filled in); two more kinds of sign-in event."""

from django.db import migrations, models


NAMES_UK = {
    "qatar": "Держава Катар",
    "vatican": "Святий Престол (Ватикан)",
    "south-africa": "Південно-Африканська Республіка",
    "icrc": "Міжнародний комітет Червоного Хреста",
}


def name_intermediaries(apps, schema_editor):
    Organisation = apps.get_model("accounts", "Organisation")
    for slug, name_uk in NAMES_UK.items():
        Organisation.objects.filter(slug=slug, name_uk="").update(name_uk=name_uk)


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0001_initial'),
    ]

    operations = [
        migrations.AddField(
            model_name='organisation',
            name='name_uk',
            field=models.CharField(blank=True, max_length=200, verbose_name='name in Ukrainian'),
        ),
        migrations.AlterField(
            model_name='authevent',
            name='kind',
            field=models.CharField(choices=[('sign_in', 'Signed in'), ('sign_in_failed', 'Failed sign-in'), ('locked_out', 'Locked out'), ('sign_out', 'Signed out'), ('otp_verified', 'Passed the second factor'), ('otp_failed', 'Wrong second-factor code'), ('otp_set_up', 'Set up two-factor sign-in'), ('backup_codes_made', 'Made new backup codes'), ('otp_device_removed', 'Removed an authenticator app'), ('password_changed', 'Changed their password'), ('permission_denied', 'Refused')], max_length=20, verbose_name='kind'),
        ),
        migrations.RunPython(name_intermediaries, migrations.RunPython.noop),
    ]
