/** Citizen-facing text: Vietnamese first, English second. One table, so a missing translation is a type error. */
export type Lang = 'vi' | 'en';

const messages = {
  service: { vi: 'Định danh điện tử quốc gia', en: 'National electronic identification' },
  loginTitle: { vi: 'Đăng nhập', en: 'Sign in' },
  loginLead: { vi: 'Đăng nhập để tiếp tục tới', en: 'Sign in to continue to' },
  pin: { vi: 'Số định danh cá nhân (12 chữ số)', en: 'Personal identification number (12 digits)' },
  password: { vi: 'Mật khẩu', en: 'Password' },
  submitLogin: { vi: 'Đăng nhập', en: 'Sign in' },
  loginFailed: {
    vi: 'Không xác minh được thông tin này. Vui lòng kiểm tra số định danh và mật khẩu rồi thử lại.',
    en: 'We could not verify these details. Check the identification number and password and try again.',
  },
  pinFormat: { vi: 'Số định danh cá nhân gồm đúng 12 chữ số.', en: 'The identification number has exactly 12 digits.' },
  consentTitle: { vi: 'Chia sẻ thông tin', en: 'Share information' },
  consentLead: {
    vi: 'Cổng dịch vụ sau đề nghị được nhận các thông tin của bạn:',
    en: 'The following portal asks to receive this information about you:',
  },
  allow: { vi: 'Đồng ý', en: 'Allow' },
  deny: { vi: 'Từ chối', en: 'Deny' },
  cancel: { vi: 'Hủy và quay lại cổng dịch vụ', en: 'Cancel and return to the portal' },
  scope_openid: { vi: 'Mã định danh của bạn tại cổng này', en: 'Your identifier at this portal' },
  scope_profile: { vi: 'Họ tên, ngày sinh, giới tính', en: 'Name, date of birth, sex' },
  scope_address: { vi: 'Địa chỉ thường trú', en: 'Permanent address' },
  scope_email: { vi: 'Thư điện tử', en: 'Email address' },
  scope_phone: { vi: 'Số điện thoại', en: 'Phone number' },
  scope_offline_access: { vi: 'Duy trì truy cập khi bạn không trực tuyến', en: 'Access while you are offline' },
  errorTitle: { vi: 'Đã có lỗi', en: 'Something went wrong' },
  errorLead: {
    vi: 'Yêu cầu không thể thực hiện. Hãy quay lại cổng dịch vụ và thử lại.',
    en: 'The request could not be completed. Go back to the portal and try again.',
  },
  errorCode: { vi: 'Mã lỗi', en: 'Error code' },
  unavailableTitle: { vi: 'Dịch vụ tạm gián đoạn', en: 'Service briefly unavailable' },
  temporarilyUnavailable: {
    vi: 'Hệ thống đang bận hoặc đang bảo trì. Vui lòng thử lại sau ít phút.',
    en: 'The system is busy or under maintenance. Please try again in a few minutes.',
  },
  logoutTitle: { vi: 'Đăng xuất', en: 'Sign out' },
  logoutLead: { vi: 'Bạn có muốn đăng xuất khỏi mọi cổng dịch vụ?', en: 'Do you want to sign out of every portal?' },
  logoutYes: { vi: 'Đăng xuất', en: 'Sign me out' },
  logoutNo: { vi: 'Giữ đăng nhập', en: 'Stay signed in' },
  loggedOut: { vi: 'Bạn đã đăng xuất.', en: 'You have signed out.' },
  otherLang: { vi: 'English', en: 'Tiếng Việt' },
  footerHotline: { vi: 'Tổng đài hỗ trợ', en: 'Helpline' },
  footerNav: { vi: 'Thông tin về dịch vụ', en: 'About this service' },
  homeTitle: { vi: 'Định danh và xác thực điện tử', en: 'Electronic identification and authentication' },
  homeLead: {
    vi: 'Một tài khoản để đăng nhập vào các cổng dịch vụ công. Danh tính của bạn được xác minh với Cơ sở dữ liệu quốc gia về dân cư; cổng dịch vụ chỉ nhận những thông tin bạn đồng ý chia sẻ.',
    en: 'One account to sign in to government portals. Your identity is verified against the national population database; a portal receives only what you agree to share.',
  },
  homeAccount: { vi: 'Đăng nhập vào tài khoản của tôi', en: 'Sign in to my account' },
  homeEnroll: { vi: 'Đăng ký tài khoản mức 1', en: 'Create a level 1 account' },
  homeRecover: { vi: 'Quên mật khẩu', en: 'Forgot my password' },
  homeLevels: {
    vi: 'Mức 1: tự đăng ký bằng số điện thoại đã đăng ký chính chủ. Mức 2: xác minh trực tiếp tại cơ quan công an và dùng thêm ứng dụng xác thực.',
    en: 'Level 1: enrol yourself with the phone number registered to you. Level 2: verified in person at a police office, plus an authenticator app.',
  },
  pinHelp: {
    vi: 'Số định danh cá nhân có 12 chữ số, in trên thẻ căn cước của bạn.',
    en: 'Your personal identification number has 12 digits and is printed on your ID card.',
  },
  lockedTitle: { vi: 'Tạm khóa để bảo vệ tài khoản', en: 'Temporarily locked to protect your account' },
  lockedRecover: { vi: 'Quên mật khẩu? Đặt lại mật khẩu', en: 'Forgot your password? Reset it' },
  signedInAs: { vi: 'Đang đăng nhập:', en: 'Signed in as' },
  notYou: { vi: 'Không phải bạn? Đăng xuất', en: 'Not you? Sign out' },
  enrollBack: { vi: 'Tiếp tục đăng nhập', en: 'Continue signing in' },
  tooManyAttempts: {
    vi: 'Bạn đã nhập sai quá nhiều lần. Vì an toàn, vui lòng thử lại sau {minutes} phút hoặc liên hệ cơ quan công an nơi cư trú.',
    en: 'Too many failed attempts. For your safety, try again in {minutes} minutes or contact your local police office.',
  },
  accountTitle: { vi: 'Tài khoản định danh của tôi', en: 'My e-ID account' },
  accountName: { vi: 'Họ và tên', en: 'Full name' },
  accountBirth: { vi: 'Ngày sinh', en: 'Date of birth' },
  accountPin: { vi: 'Số định danh cá nhân', en: 'Personal identification number' },
  accountLevel: { vi: 'Mức độ định danh', en: 'Identification level' },
  level1: { vi: 'Mức 1', en: 'Level 1' },
  level2: { vi: 'Mức 2', en: 'Level 2' },
  historyTitle: { vi: 'Lịch sử đăng nhập', en: 'Sign-in history' },
  historyTime: { vi: 'Thời gian', en: 'Time' },
  historyPortal: { vi: 'Cổng dịch vụ', en: 'Portal' },
  historyResult: { vi: 'Kết quả', en: 'Result' },
  historyPlace: { vi: 'Địa chỉ IP', en: 'IP address' },
  resultSuccess: { vi: 'Thành công', en: 'Succeeded' },
  resultFailure: { vi: 'Không thành công', en: 'Failed' },
  signOut: { vi: 'Đăng xuất', en: 'Sign out' },
  enrollTitle: { vi: 'Đăng ký tài khoản định danh mức 1', en: 'Create a level 1 e-ID account' },
  enrollLead: {
    vi: 'Nhập thông tin đúng như trong Cơ sở dữ liệu quốc gia về dân cư, rồi chọn mật khẩu.',
    en: 'Enter your details exactly as in the national population database, then choose a password.',
  },
  fullName: { vi: 'Họ và tên', en: 'Full name' },
  birthDate: { vi: 'Ngày sinh (ngày/tháng/năm)', en: 'Date of birth (day/month/year)' },
  newPassword: { vi: 'Mật khẩu mới (ít nhất 8 ký tự)', en: 'New password (at least 8 characters)' },
  currentPassword: { vi: 'Mật khẩu hiện tại', en: 'Current password' },
  submitEnroll: { vi: 'Đăng ký', en: 'Create account' },
  enrollDone: {
    vi: 'Nếu thông tin khớp với Cơ sở dữ liệu quốc gia về dân cư, tài khoản định danh mức 1 của bạn đã sẵn sàng. Hãy đăng nhập bằng số định danh và mật khẩu.',
    en: 'If these details match the national population database, your level 1 e-ID account is ready. Sign in with your identification number and password.',
  },
  enrollLink: { vi: 'Chưa có tài khoản? Đăng ký', en: 'No account yet? Create one' },
  enrollDoneNow: {
    vi: 'Tài khoản định danh mức 1 của bạn đã được tạo. Hãy đăng nhập bằng số định danh và mật khẩu vừa chọn.',
    en: 'Your level 1 e-ID account has been created. Sign in with your identification number and the password you chose.',
  },
  codeTitle: { vi: 'Nhập mã xác thực', en: 'Enter the verification code' },
  codeSentTo: {
    vi: 'Nếu thông tin khớp với Cơ sở dữ liệu quốc gia về dân cư, chúng tôi đã gửi mã xác thực 6 chữ số tới số điện thoại đã đăng ký của bạn, có đuôi',
    en: 'If these details match the national population database, a 6-digit code was sent to the phone number registered to you, ending in',
  },
  codeSentMaybe: {
    vi: 'Nếu thông tin khớp với Cơ sở dữ liệu quốc gia về dân cư và bạn có số điện thoại đã đăng ký, chúng tôi đã gửi mã xác thực 6 chữ số tới số đó.',
    en: 'If these details match the national population database and a phone number is registered to you, a 6-digit code was sent to it.',
  },
  codeHelp: {
    vi: 'Mã có hiệu lực 5 phút. Không nhận được mã? Số điện thoại của bạn có thể chưa được đăng ký chính chủ: hãy đăng ký trực tiếp tại cơ quan công an nơi cư trú.',
    en: 'The code is valid for 5 minutes. No code? Your phone number may not be registered to you: enrol in person at your local police office.',
  },
  codeLabel: { vi: 'Mã xác thực (6 chữ số)', en: 'Verification code (6 digits)' },
  codeWrong: {
    vi: 'Mã không đúng hoặc đã hết hạn. Kiểm tra lại tin nhắn, hoặc yêu cầu mã mới.',
    en: 'The code is wrong or has expired. Check the message, or ask for a new code.',
  },
  codeAgain: { vi: 'Yêu cầu mã mới', en: 'Ask for a new code' },
  forgotLink: { vi: 'Quên mật khẩu?', en: 'Forgot your password?' },
  recoverTitle: { vi: 'Đặt lại mật khẩu', en: 'Reset your password' },
  recoverLead: {
    vi: 'Nhập thông tin đúng như trên thẻ căn cước. Chúng tôi sẽ gửi mã xác thực tới số điện thoại đã đăng ký của bạn.',
    en: 'Enter your details exactly as on your ID card. We will send a code to the phone number registered to you.',
  },
  recoverSend: { vi: 'Gửi mã', en: 'Send a code' },
  recoverOfficerLink: {
    vi: 'Đã có mã đặt lại do cán bộ công an cấp? Nhập mã tại đây',
    en: 'Have a reset code from a police officer? Enter it here',
  },
  recoverOfficerTitle: { vi: 'Mã đặt lại do cán bộ cấp', en: 'Reset code from an officer' },
  recoverOfficerLead: {
    vi: 'Nhập số định danh và mã đặt lại (16 ký tự) mà cán bộ đã trao cho bạn.',
    en: 'Enter your identification number and the 16-character reset code the officer gave you.',
  },
  resetCodeLabel: { vi: 'Mã đặt lại', en: 'Reset code' },
  recoverInPerson: {
    vi: 'Không dùng được số điện thoại đã đăng ký? Hãy mang thẻ căn cước tới cơ quan công an nơi cư trú để được cấp mã đặt lại.',
    en: 'Cannot use your registered phone? Bring your ID card to your local police office for a reset code.',
  },
  recoverPasswordLead: {
    vi: 'Chọn mật khẩu mới cho tài khoản của bạn.',
    en: 'Choose a new password for your account.',
  },
  recoverSecondFactor: {
    vi: 'Tài khoản mức 2: nhập mã từ ứng dụng xác thực hoặc một mã khôi phục',
    en: 'Level 2 account: enter the code from your authenticator app, or a recovery code',
  },
  recoverSecondWrong: {
    vi: 'Mã xác thực hai lớp không đúng.',
    en: 'The second-factor code is wrong.',
  },
  recoverExpired: {
    vi: 'Yêu cầu đặt lại đã hết hạn hoặc đã được dùng. Hãy bắt đầu lại.',
    en: 'This reset has expired or was already used. Start again.',
  },
  recoverDone: {
    vi: 'Mật khẩu đã được đặt lại. Mọi phiên đăng nhập khác đã kết thúc. Hãy đăng nhập bằng mật khẩu mới.',
    en: 'Your password has been reset. Every other sign-in has ended. Sign in with your new password.',
  },
  resetNoticeTitle: { vi: 'Mật khẩu của bạn đã được đặt lại', en: 'Your password was reset' },
  resetNoticeSms: {
    vi: 'Mật khẩu tài khoản của bạn đã được đặt lại bằng mã gửi tới điện thoại, lúc',
    en: 'Your password was reset with a code sent to your phone, on',
  },
  resetNoticeOfficer: {
    vi: 'Mật khẩu tài khoản của bạn đã được đặt lại bằng mã do cán bộ cấp, lúc',
    en: "Your password was reset with an officer's reset code, on",
  },
  resetNoticeFrom: { vi: 'từ địa chỉ IP', en: 'from IP address' },
  resetNoticeHelp: {
    vi: 'Nếu không phải bạn, hãy đến cơ quan công an gần nhất ngay.',
    en: 'If this was not you, go to the nearest police office at once.',
  },
  continue: { vi: 'Tiếp tục', en: 'Continue' },
  totpQrAlt: {
    vi: 'Mã QR để thêm tài khoản vào ứng dụng xác thực; nếu không quét được, hãy nhập khóa bên dưới',
    en: 'QR code that adds this account to your authenticator app; if you cannot scan it, type the key below',
  },
  invalidPin: {
    vi: 'Số định danh cá nhân gồm đúng 12 chữ số.',
    en: 'The identification number has exactly 12 digits.',
  },
  invalidBirthDate: { vi: 'Ngày sinh không hợp lệ.', en: 'The date of birth is not a valid date.' },
  invalidFullName: { vi: 'Hãy nhập họ và tên.', en: 'Enter your full name.' },
  pw_blank: { vi: 'Mật khẩu không được chỉ gồm khoảng trắng.', en: 'The password cannot be only spaces.' },
  pw_too_short: {
    vi: 'Mật khẩu cần ít nhất 8 ký tự (không tính khoảng trắng ở đầu và cuối).',
    en: 'The password needs at least 8 characters (not counting spaces at either end).',
  },
  pw_too_long: { vi: 'Mật khẩu tối đa 128 ký tự.', en: 'The password can have at most 128 characters.' },
  pw_common: {
    vi: 'Mật khẩu này quá phổ biến, hãy chọn mật khẩu khác.',
    en: 'This password is too common; choose another.',
  },
  pw_personal: {
    vi: 'Mật khẩu không được là số định danh hoặc ngày sinh.',
    en: 'The password must not be your identification number or date of birth.',
  },
  pw_wrong_password: { vi: 'Mật khẩu hiện tại không đúng.', en: 'The current password is wrong.' },
  passwordChangedOthersEnded: {
    vi: 'Đã đổi mật khẩu. Mọi phiên đăng nhập khác của bạn đã kết thúc; thiết bị này vẫn đăng nhập.',
    en: 'Your password has been changed. Every other session of yours has ended; this device stays signed in.',
  },
  passwordChangedAllEnded: {
    vi: 'Đã đổi mật khẩu. Mọi phiên đăng nhập của bạn đã kết thúc, kể cả trên thiết bị này.',
    en: 'Your password has been changed. Every session of yours has ended, this device included.',
  },
  passwordEndsOthers: {
    vi: 'Khi đổi mật khẩu, bạn sẽ được đăng xuất khỏi mọi thiết bị khác và các cổng dịch vụ trên đó.',
    en: 'Changing your password signs you out on every other device and of the portals there.',
  },
  passwordEndAll: { vi: 'Đăng xuất cả trên thiết bị này', en: 'Sign out on this device too' },
  changePassword: { vi: 'Đổi mật khẩu', en: 'Change password' },
  level2Title: { vi: 'Nâng lên mức 2', en: 'Upgrade to level 2' },
  level2Visit: {
    vi: 'Mức 2 cần xác minh trực tiếp tại cơ quan công an. Sau khi xác minh, nhập mã kích hoạt được cấp tại đây.',
    en: 'Level 2 needs in-person verification at a police office. Afterwards, enter the activation code you were given here.',
  },
  activationCode: { vi: 'Mã kích hoạt', en: 'Activation code' },
  activate: { vi: 'Kích hoạt', en: 'Activate' },
  activationFailed: {
    vi: 'Mã kích hoạt không đúng hoặc đã hết hạn.',
    en: 'The activation code is wrong or has expired.',
  },
  totpStart: { vi: 'Cài đặt ứng dụng xác thực', en: 'Set up an authenticator app' },
  totpTitle: { vi: 'Ứng dụng xác thực', en: 'Authenticator app' },
  totpLead: {
    vi: 'Quét mã QR bằng ứng dụng xác thực (hoặc nhập khóa bên dưới), rồi nhập mã 6 chữ số mà ứng dụng hiển thị.',
    en: 'Scan the QR code with an authenticator app (or enter the key below), then type the 6-digit code it shows.',
  },
  totpKey: { vi: 'Khóa nhập tay', en: 'Manual key' },
  totpCode: { vi: 'Mã 6 chữ số', en: '6-digit code' },
  confirm: { vi: 'Xác nhận', en: 'Confirm' },
  totpFailed: { vi: 'Mã không đúng. Hãy thử mã mới.', en: 'That code is not right. Try a new code.' },
  recoveryTitle: { vi: 'Mã khôi phục', en: 'Recovery codes' },
  recoveryLead: {
    vi: 'Tài khoản của bạn đã đạt mức 2. Hãy lưu các mã khôi phục này ở nơi an toàn; mỗi mã dùng được một lần khi bạn không có điện thoại. Chúng sẽ không được hiển thị lại.',
    en: 'Your account is now level 2. Keep these recovery codes somewhere safe; each works once when you do not have your phone. They will not be shown again.',
  },
  level2Active: { vi: 'Mức 2 đang hoạt động. Số mã khôi phục còn lại:', en: 'Level 2 is active. Recovery codes left:' },
  backToAccount: { vi: 'Về trang tài khoản', en: 'Back to my account' },
  passkeyLogin: { vi: 'Đăng nhập bằng khóa truy cập (passkey)', en: 'Sign in with a passkey' },
  passkeyStepUp: { vi: 'Dùng khóa truy cập (passkey)', en: 'Use a passkey' },
  passkeyOr: { vi: 'Hoặc nhập mã:', en: 'Or enter a code:' },
  passkeyFailed: {
    vi: 'Không xác minh được khóa truy cập. Hãy thử lại hoặc dùng mật khẩu.',
    en: 'The passkey could not be verified. Try again or use your password.',
  },
  passkeyBrowserError: {
    vi: 'Trình duyệt chưa hoàn tất khóa truy cập. Hãy thử lại.',
    en: 'The browser did not complete the passkey. Try again.',
  },
  passkeysTitle: { vi: 'Khóa truy cập (passkey)', en: 'Passkeys' },
  passkeysLead: {
    vi: 'Đăng nhập bằng vân tay, khuôn mặt hoặc khóa màn hình của thiết bị, không cần mật khẩu. Tối đa 10 khóa.',
    en: "Sign in with your device's fingerprint, face or screen lock, without a password. At most 10 passkeys.",
  },
  passkeysNone: { vi: 'Chưa có khóa truy cập nào.', en: 'No passkeys yet.' },
  passkeyName: { vi: 'Tên khóa', en: 'Passkey name' },
  passkeyDefaultName: { vi: 'Khóa truy cập', en: 'Passkey' },
  passkeyAdd: { vi: 'Thêm khóa truy cập', en: 'Add a passkey' },
  passkeyRename: { vi: 'Đổi tên', en: 'Rename' },
  passkeyRemove: { vi: 'Xóa', en: 'Remove' },
  passkeySynced: { vi: 'đồng bộ giữa các thiết bị', en: 'synced between devices' },
  passkeyDeviceBound: { vi: 'chỉ trên một thiết bị', en: 'on one device only' },
  passkeyLevel2: { vi: 'dùng được cho mức 2', en: 'valid for level 2' },
  passkeyCreated: { vi: 'tạo lúc', en: 'created' },
  passkeyLastUsed: { vi: 'dùng lần cuối', en: 'last used' },
  passkeyClone: {
    vi: 'Cảnh báo: khóa này có dấu hiệu bị sao chép và đã bị từ chối. Hãy xóa nó.',
    en: 'Warning: this passkey looks copied and was refused. Remove it.',
  },
  passkeyConfirmFirst: {
    vi: 'Để thêm hoặc xóa khóa truy cập, hãy xác nhận lại (mật khẩu và yếu tố thứ hai nếu tài khoản ở mức 2).',
    en: 'To add or remove a passkey, confirm again (password, and your second factor if the account is level 2).',
  },
  passkeyConfirm: { vi: 'Xác nhận lại', en: 'Confirm again' },
  passkeyAdded: { vi: 'Đã thêm khóa truy cập.', en: 'The passkey was added.' },
  passkeyAddFailed: { vi: 'Không thêm được khóa truy cập.', en: 'The passkey could not be added.' },
  passkeyLimit: { vi: 'Mỗi tài khoản có tối đa 10 khóa truy cập.', en: 'An account has at most 10 passkeys.' },
  passkeyRenamed: { vi: 'Đã đổi tên khóa truy cập.', en: 'The passkey was renamed.' },
  passkeyRemoved: { vi: 'Đã xóa khóa truy cập.', en: 'The passkey was removed.' },
  otpTitle: { vi: 'Xác thực mức 2', en: 'Level 2 verification' },
  otpLead: {
    vi: 'Cổng dịch vụ này yêu cầu định danh mức 2. Nhập mã 6 chữ số trong ứng dụng xác thực (hoặc một mã khôi phục).',
    en: 'This portal requires level 2. Enter the 6-digit code from your authenticator app (or a recovery code).',
  },
  otpLabel: { vi: 'Mã xác thực', en: 'Verification code' },
  otpFailed: {
    vi: 'Mã không đúng hoặc đã dùng. Hãy nhập mã mới.',
    en: 'The code is wrong or already used. Enter a new code.',
  },
  unmetTitle: { vi: 'Cần tài khoản định danh mức 2', en: 'A level 2 e-ID account is needed' },
  unmetLead: {
    vi: 'Cổng dịch vụ này chỉ chấp nhận tài khoản định danh mức 2. Để nâng lên mức 2, hãy mang căn cước đến cơ quan công an để xác minh trực tiếp, rồi nhập mã kích hoạt tại trang tài khoản và cài đặt ứng dụng xác thực.',
    en: 'This portal accepts only level 2 e-ID accounts. To reach level 2, bring your identity card to a police office for in-person verification, then enter the activation code on your account page and set up an authenticator app.',
  },
  unmetBack: { vi: 'Quay lại cổng dịch vụ', en: 'Return to the portal' },
  scope_national_id: { vi: 'Số định danh cá nhân (12 chữ số)', en: 'Personal identification number (12 digits)' },
  grantsTitle: { vi: 'Cổng dịch vụ được chia sẻ thông tin', en: 'Portals you share information with' },
  grantsNone: { vi: 'Chưa có cổng dịch vụ nào.', en: 'No portal yet.' },
  revoke: { vi: 'Thu hồi', en: 'Revoke' },
  grantRevoked: {
    vi: 'Đã thu hồi. Cổng dịch vụ sẽ phải xin lại sự đồng ý của bạn.',
    en: 'Revoked. The portal will have to ask for your consent again.',
  },
  sessionsTitle: { vi: 'Phiên đăng nhập đang hoạt động', en: 'Active sign-in sessions' },
  sessionDevice: { vi: 'Thiết bị', en: 'Device' },
  sessionSince: { vi: 'Đăng nhập lúc', en: 'Signed in at' },
  sessionThis: { vi: '(phiên này)', en: '(this session)' },
  sessionEnd: { vi: 'Kết thúc', en: 'End' },
  sessionAction: { vi: 'Thao tác', en: 'Action' },
  stepPassword: { vi: 'mật khẩu', en: 'password' },
  stepSecondFactor: { vi: 'mã xác thực', en: 'second factor' },
  stepUp: { vi: 'nâng mức', en: 'step-up' },
  sessionEnded: {
    vi: 'Đã kết thúc phiên đăng nhập. Các cổng dịch vụ dùng phiên này đã được thông báo.',
    en: 'The session has ended. The portals that used it have been told.',
  },
  apiAccess: { vi: 'Truy cập dịch vụ (API)', en: 'Access to the service (API)' },
  requestTooLarge: { vi: 'Dữ liệu gửi lên quá lớn.', en: 'The submitted data is too large.' },
  csrfFailed: {
    vi: 'Phiên làm việc của biểu mẫu đã hết hạn. Hãy tải lại trang và thử lại.',
    en: 'This form has expired. Reload the page and try again.',
  },
} as const satisfies Record<string, Record<Lang, string>>;

export type MessageKey = keyof typeof messages;

/** The text for `key` in `lang`. */
export function t(lang: Lang, key: MessageKey): string {
  return messages[key][lang];
}

/** True when `key` names a message (for keys built at run time, like scope names). */
export function hasMessage(key: string): key is MessageKey {
  return Object.hasOwn(messages, key);
}

/** Picks the language: `?lang=`, then the `lang` cookie, then Accept-Language; Vietnamese by default. */
export function pickLang(query: unknown, cookie: string | undefined, acceptLanguage: string | undefined): Lang {
  if (query === 'vi' || query === 'en') return query;
  if (cookie === 'vi' || cookie === 'en') return cookie;
  const first = acceptLanguage?.split(',')[0]?.trim().toLowerCase() ?? '';
  return first.startsWith('en') ? 'en' : 'vi';
}

/** The time zone pages show times in (TIME_ZONE, set once at start-up; Vietnam time by default). */
let timeZone = 'Asia/Ho_Chi_Minh';

/** Sets the time zone of every page (called once by the service at start-up, from TIME_ZONE). */
export function useTimeZone(zone: string): void {
  timeZone = zone;
}

/** A moment as citizens read it: in the service's time zone (TIME_ZONE), in the page's language. */
export function vnDateTime(d: Date, lang: Lang): string {
  return d.toLocaleString(lang === 'vi' ? 'vi-VN' : 'en-GB', {
    timeZone,
    dateStyle: 'medium',
    timeStyle: 'short',
    hour12: false,
  });
}

/** A calendar date (YYYY-MM-DD) as citizens write it: dd/mm/yyyy. */
export function vnDate(iso: string): string {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(iso);
  return m ? `${m[3]}/${m[2]}/${m[1]}` : iso;
}
