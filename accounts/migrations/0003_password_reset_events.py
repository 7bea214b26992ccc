"""Three kinds of sign-in event: a password reset asked for, one refused for too many requests, and one done.

Choices only: nothing changes in the database (the table is partners_authevent, see 0001)."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0002_names_in_ukrainian_and_event_kinds'),
    ]

    operations = [
        migrations.AlterField(
            model_name='authevent',
            name='kind',
            field=models.CharField(choices=[('sign_in', 'Signed in'), ('sign_in_failed', 'Failed sign-in'), ('locked_out', 'Locked out'), ('sign_out', 'Signed out'), ('otp_verified', 'Passed the second factor'), ('otp_failed', 'Wrong second-factor code'), ('otp_set_up', 'Set up two-factor sign-in'), ('backup_codes_made', 'Made new backup codes'), ('otp_device_removed', 'Removed an authenticator app'), ('password_changed', 'Changed their password'), ('permission_denied', 'Refused'), ('reset_requested', 'Asked for a password reset'), ('reset_throttled', 'Too many password reset requests'), ('password_reset', 'Reset their password by e-mail')], max_length=20, verbose_name='kind'),
        ),
    ]
